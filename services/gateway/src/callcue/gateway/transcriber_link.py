"""A live call's link to the transcriber, kept for the whole call.

When the stream is lost (the replica went away, or was too busy to take the call) a new
one, on another replica, takes the call over from the end of the last final word of the
channel furthest behind, with the audio kept since. The transcriber is told where in the
call that audio starts and which ids to give its segments, so it stamps call time itself;
all that is left to do here is to drop the words a channel already had as final (the
channels ahead hear some audio twice).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator

import grpc
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core.audio_format import bytes_per_second
from callcue.core.backoff import Backoff
from callcue.core.durations import duration, seconds
from callcue.gateway.call_audio import CallAudio
from callcue.gateway.call_session import CallSession
from callcue.gateway.retries import GIVE_UP_AFTER, RETRYABLE
from callcue.transcriber.v1 import transcriber_service_pb2 as transcriber_pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as transcriber_grpc

log = structlog.get_logger("callcue.gateway")

# Replicas a new call tries (round robin) before it is refused: a call no one could take
# is told so in about a second and a half, not after the minutes a running call would wait.
ADMISSION_ATTEMPTS = 3
# How long a new transcriber stream's audio waits for the replica to say it took it.
TAKEN_PATIENCE_SECONDS = 1.0
# A word ending this close to a channel's last final word is the same word heard again.
_SAME_WORD_SECONDS = 0.05


class FinalWords:
    """Where each channel's final words end, and what a taken-over stream repeats."""

    def __init__(self, channels: int) -> None:
        self._until = [0.0] * channels
        # Where each channel's final words ended when the current stream began: what it
        # says before that, earlier streams said. Its own words are never held against
        # it (one word timed too late would hide the words after it).
        self._before_stream = [0.0] * channels

    def take_over(self) -> float:
        """A new stream takes the call over: where it should start. The channel furthest
        behind has all its final words before it, and nothing after it is lost."""
        self._before_stream = list(self._until)
        return min(self._until)

    def fresh(self, segment: call_pb2.TranscriptSegment) -> call_pb2.TranscriptSegment | None:
        """The segment without the words its channel already had as final; None if that
        leaves nothing."""
        if segment.channel >= len(self._until):
            return segment
        heard = self._before_stream[segment.channel]
        words = [w for w in segment.words if seconds(w.end_offset) > heard + _SAME_WORD_SECONDS]
        if len(words) != len(segment.words):
            if not words:
                return None
            trimmed = call_pb2.TranscriptSegment()
            trimmed.CopyFrom(segment)
            del trimmed.words[:]
            trimmed.words.extend(words)
            trimmed.text = " ".join(word.text for word in words)
            trimmed.start_offset.CopyFrom(words[0].start_offset)
            segment = trimmed
        if segment.is_final and segment.words:
            end = seconds(segment.words[-1].end_offset)
            self._until[segment.channel] = max(self._until[segment.channel], end)
        return segment


class TranscriberLink:
    def __init__(
        self,
        transcriber: transcriber_grpc.TranscriberServiceAsyncStub,
        config: transcriber_pb.StreamingConfig,
    ) -> None:
        self._transcriber = transcriber
        self._config = config
        rate = bytes_per_second(config.audio_format)
        self.audio = CallAudio(rate, rate // config.audio_format.sample_rate_hertz)
        self._finals = FinalWords(config.audio_format.channel_count or 1)
        # Attempts in a row that delivered nothing: a segment resets it.
        self._backoff = Backoff(give_up_after=GIVE_UP_AFTER)
        self._streams = 0
        # A replica has taken this call: from then on it is a running call, which a
        # replica takes over beyond its capacity and which is never refused as new.
        self._admitted = False
        # Why the call could not start: every replica tried refused it (RESOURCE_EXHAUSTED),
        # with the transcriber's retry hint, for the caller.
        self.refusal: errors.RpcError | None = None

    async def run(self, call: CallSession) -> tuple[call_pb2.CallState.ValueType, str]:
        """Streams the call's audio (appended to ``audio`` by the intake) until it ends;
        the call's state and why."""
        offset = 0
        while True:
            try:
                await self._stream(call, offset)
                return call_pb2.CALL_STATE_ENDED, "call ended"
            except grpc.aio.AioRpcError as error:
                log.warning(
                    "transcriber stream lost", code=error.code().name, details=error.details()
                )
                refused = error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not self._admitted
                if refused and self._backoff.failures + 1 >= ADMISSION_ATTEMPTS:
                    self.refusal = errors.received(error)
                if error.code() not in RETRYABLE or self._backoff.exhausted or self.refusal:
                    return (
                        call_pb2.CALL_STATE_FAILED,
                        f"transcriber failed: {error.code().name}: {error.details()}",
                    )
                await self._backoff.wait()
                offset = self.audio.offset(self._finals.take_over())
                self._streams += 1
                call.add_status(
                    call_pb2.CallStatus(
                        state=call_pb2.CALL_STATE_ACTIVE,
                        message=f"transcriber lost ({error.code().name}); resuming on "
                        f"another replica from {self.audio.seconds(offset):.1f} s into the call",
                    )
                )

    async def _stream(self, call: CallSession, offset: int) -> None:
        config = transcriber_pb.StreamingConfig()
        config.CopyFrom(self._config)
        config.call_offset.CopyFrom(duration(self.audio.seconds(offset)))
        config.segment_id_prefix = f"r{self._streams}." if self._streams else ""
        config.takes_over = self._admitted
        config.replayed.CopyFrom(duration(self.audio.seconds(self.audio.end - offset)))

        taken = asyncio.Event()

        async def requests() -> AsyncIterator[transcriber_pb.StreamingTranscribeRequest]:
            yield transcriber_pb.StreamingTranscribeRequest(config=config)
            # Audio once the replica has taken the stream (its first response, at once): a
            # write to a stream it refused turns the refusal into INTERNAL (grpc/grpc#36066).
            # Bounded, so a stream that failed some other way never holds its sender.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(taken.wait(), TAKEN_PATIENCE_SECONDS)
            async for chunk in self.audio.read_from(offset):
                yield transcriber_pb.StreamingTranscribeRequest(audio=chunk)

        async for response in self._transcriber.StreamingTranscribe(requests()):
            if response.HasField("engine_status"):
                self._admitted = True
                taken.set()
                call.engine = response.engine_status.engine
                call.model = response.engine_status.model
                call.add_status(
                    call_pb2.CallStatus(
                        state=call_pb2.CALL_STATE_ACTIVE,
                        message=f"transcribing with {response.engine_status.model}",
                    )
                )
            else:
                self._backoff.reset()  # the stream got somewhere
                if (segment := self._finals.fresh(response.segment)) is not None:
                    call.add_segment(segment)


async def pump(audio: AsyncIterable[bytes], into: CallAudio) -> None:
    """The caller's audio into the call's buffer, to the end of the call."""
    async for chunk in audio:
        await into.append(chunk)
    await into.close()
