"""Cuts a channel's audio into utterances at pauses, from VAD probabilities."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from callcue.transcriber.audio import SAMPLE_RATE, Samples
from callcue.transcriber.loudness import LoudnessGate
from callcue.transcriber.vad import WINDOW, StreamingVad

# Windows at the VAD's threshold an utterance needs to count as speech the VAD is sure of:
# music scored a stray window over 0.5 now and then, speech a few in every word.
CONFIDENT_WINDOWS = 4
# An utterance opened by loudness alone that Silero then hears speech in is split there,
# when what came first is at least this long.
MIN_LOUD_LEAD_MS = 500


@dataclass(frozen=True)
class Utterance:
    start: int  # first sample, counted from the start of the channel
    audio: Samples
    voice_end: int = 0  # end of the last voiced window, counted like start
    # No window reached the VAD's confident threshold: only Whisper can tell whether it
    # is speech (conference lines and codecs make Silero doubt clear speech).
    doubtful: bool = False

    @property
    def start_seconds(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class UtteranceCutter:
    """Feeds audio through the VAD and returns each utterance once a pause ends it.

    The VAD decides where utterances begin and end, not which speech is heard: Silero
    scores clear speech on a conference line or through a codec well under its usual 0.5
    (the median window of a whole earnings call scored 0.4; speech band-limited to 1-3 kHz,
    0.02), so a window at ``doubt`` or more, or ``loudness_margin_db`` above the channel's
    noise floor, counts as possible speech. Speech starts at a window of ``threshold`` or
    more, or at ``doubt_run_ms`` of windows that are mostly possible speech, and goes on
    while windows stay possible speech. A pause of ``end_silence_ms`` ends it; ``pad_ms``
    of audio is kept on each side so word edges survive; an utterance longer than
    ``max_seconds`` is cut at its quietest recent window. An utterance with fewer than
    ``CONFIDENT_WINDOWS`` windows at ``threshold`` is marked doubtful, for Whisper to
    judge more strictly. Only the audio of the open utterance (plus the pad) is kept.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        doubt: float = 0.2,
        doubt_run_ms: int = 320,
        loudness_margin_db: float | None = 12.0,
        end_silence_ms: int = 500,
        pad_ms: int = 200,
        min_speech_ms: int = 250,
        max_seconds: float = 15.0,
    ) -> None:
        self._vad = StreamingVad()
        self._loudness = (
            None
            if loudness_margin_db is None
            else LoudnessGate(WINDOW, sample_rate=SAMPLE_RATE, margin_db=loudness_margin_db)
        )
        self._on = threshold
        self._off = min(doubt, threshold - 0.15)
        self._doubt_windows = max(1, doubt_run_ms * SAMPLE_RATE // 1000 // WINDOW)
        self._recent: deque[bool] = deque(maxlen=self._doubt_windows)
        self._recent_vad: deque[bool] = deque(maxlen=self._doubt_windows)  # at ``doubt``
        self._min_lead = MIN_LOUD_LEAD_MS * SAMPLE_RATE // 1000
        self._end_silence = end_silence_ms * SAMPLE_RATE // 1000
        self._pad = pad_ms * SAMPLE_RATE // 1000
        self._min_speech = min_speech_ms * SAMPLE_RATE // 1000
        self._max = int(max_seconds * SAMPLE_RATE)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._window = 0  # index of the next window the VAD scores
        self._speech_start: int | None = None  # first sample of the open utterance
        self._voice_start = 0  # first window above threshold in it
        self._voice_end = 0  # end of the last window above the lower threshold
        self._probabilities: list[float] = []  # per window of the open utterance
        self._confident_windows = 0  # of the open utterance, at ``threshold`` or more
        self._loud_lead = False  # it opened on loudness alone, and Silero has heard nothing

    @property
    def samples_seen(self) -> int:
        return self._buffer_start + len(self._buffer)

    @property
    def silence_samples(self) -> int:
        """How long the open utterance has been quiet (0 while someone speaks)."""
        if self._speech_start is None:
            return 0
        return max(0, self._window * WINDOW - self._voice_end)

    def open_utterance(self) -> Utterance | None:
        """The utterance being spoken now, for partial results."""
        if self._speech_start is None or self._voice_end - self._voice_start < self._min_speech:
            return None
        return Utterance(
            self._speech_start,
            self._slice(self._speech_start, self.samples_seen),
            min(self._voice_end, self.samples_seen),
            doubtful=self._confident_windows < CONFIDENT_WINDOWS,
        )

    def cut_at(self, sample: int, *, utterance_start: int) -> bool:
        """Starts a new utterance at ``sample`` inside the open one, which must be the one
        that began at ``utterance_start``: what came before is settled, so later decodes
        need not see it again. False, and nothing cut, when that utterance has ended
        meanwhile (its audio has gone out whole, to be decoded as one)."""
        if self._speech_start != utterance_start or not utterance_start < sample < (
            self.samples_seen
        ):
            return False
        self._speech_start = self._voice_start = sample
        self._voice_end = max(self._voice_end, sample)
        self._probabilities = self._probabilities[-max(1, (self.samples_seen - sample) // WINDOW) :]
        self._forget_before(sample)
        return True

    def push(self, samples: Samples) -> list[Utterance]:
        self._buffer = np.concatenate([self._buffer, samples])
        closed = []
        probabilities = self._vad.push(samples)
        first = self._window * WINDOW - self._buffer_start
        windows = self._buffer[first : first + len(probabilities) * WINDOW]
        loud = (
            self._loudness.loud(windows.reshape(-1, WINDOW))
            if self._loudness
            else np.zeros(len(probabilities), dtype=bool)
        )
        for probability, is_loud in zip(probabilities, loud, strict=True):
            window_start = self._window * WINDOW
            window_end = window_start + WINDOW
            self._window += 1
            possible = bool(probability >= self._off or is_loud)
            self._recent.append(possible)
            self._recent_vad.append(bool(probability >= self._off))
            if self._speech_start is None:
                if probability >= self._on or self._doubtful_run():
                    run = 1 if probability >= self._on else len(self._recent)
                    first = window_end - WINDOW * run
                    self._speech_start = max(self._buffer_start, first - self._pad)
                    self._voice_start, self._voice_end = first, window_end
                    self._probabilities = [float(probability)]
                    self._confident_windows = int(probability >= self._on)
                    self._loud_lead = probability < self._on and not self._mostly(self._recent_vad)
                continue
            if self._loud_lead and (probability >= self._on or self._mostly(self._recent_vad)):
                self._loud_lead = False
                cut = window_start - self._pad
                if probability >= self._on and cut - self._speech_start >= self._min_lead:
                    # What Silero heard nothing in (a click, a breath, line noise) is
                    # decoded on its own: before speech in one window it made Whisper skip
                    # the first words ("Harper Valley National Bank" of a greeting).
                    closed += self._close(cut, reopen=True)
            self._probabilities.append(float(probability))
            self._confident_windows += int(probability >= self._on)
            if possible:
                self._voice_end = window_end
            if window_end - self._voice_end >= self._end_silence:
                closed += self._close(self._voice_end + self._pad, reopen=False)
            elif window_end - self._speech_start >= self._max:
                closed += self._close(self._quietest_recent_window(window_end), reopen=True)
        if self._speech_start is None:
            self._forget_before(self.samples_seen - self._pad)
        return closed

    def flush(self) -> list[Utterance]:
        """Ends the stream: the open utterance, if any, is closed."""
        if self._speech_start is None:
            return []
        return self._close(min(self._voice_end + self._pad, self.samples_seen), reopen=False)

    def _doubtful_run(self) -> bool:
        return self._mostly(self._recent)

    @staticmethod
    def _mostly(recent: deque[bool]) -> bool:
        """Most of the last ``doubt_run_ms`` was possible speech, its last window too:
        noise scores a scattered window at ``doubt`` now and then, speech a run of them."""
        return len(recent) == recent.maxlen and recent[-1] and sum(recent) * 4 >= len(recent) * 3

    def _quietest_recent_window(self, window_end: int) -> int:
        recent = self._probabilities[-int(2 * SAMPLE_RATE / WINDOW) :]
        quietest = int(np.argmin(recent))
        return window_end - (len(recent) - quietest - 1) * WINDOW - WINDOW // 2

    def _close(self, end: int, *, reopen: bool) -> list[Utterance]:
        assert self._speech_start is not None
        start = self._speech_start
        long_enough = self._voice_end - self._voice_start >= self._min_speech
        utterance = Utterance(
            start,
            self._slice(start, end),
            min(self._voice_end, end),
            doubtful=self._confident_windows < CONFIDENT_WINDOWS,
        )
        if reopen:
            self._speech_start = self._voice_start = end
            self._probabilities = []
            self._confident_windows = 0
        else:
            self._speech_start = None
        self._forget_before(end - self._pad if not reopen else end)
        return [utterance] if long_enough or reopen else []

    def _slice(self, start: int, end: int) -> Samples:
        # A view, not a copy: the buffer is never written in place (appending and trimming
        # make new arrays), so what a view shows cannot change under a decode.
        return self._buffer[start - self._buffer_start : end - self._buffer_start]

    def _forget_before(self, sample: int) -> None:
        drop = min(max(0, sample - self._buffer_start), len(self._buffer))
        if drop:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
