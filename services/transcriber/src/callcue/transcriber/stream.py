"""One live stream: audio in, partial and final transcript segments out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from callcue.call.v1 import call_pb2
from callcue.transcriber.audio import SAMPLE_RATE, Samples, StreamDecoder
from callcue.transcriber.engine import SpeechEngine
from callcue.transcriber.segments import to_segment
from callcue.transcriber.utterances import Utterance, UtteranceCutter
from callcue.transcriber.v1 import transcriber_service_pb2 as pb

log = structlog.get_logger("callcue.transcriber")

# A partial is worth an encoder pass only after this much more speech.
PARTIAL_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class _Job:
    channel: int
    segment_id: str
    utterance: Utterance
    final: bool


_END = object()


class LiveTranscription:
    """Cuts each channel into utterances while audio arrives, and transcribes them in
    order. Reading audio never waits on the model: a producer task decodes and cuts,
    the response stream transcribes. Partials are only scheduled when no final of
    this stream is waiting, so under load a stream sends fewer partials, not later finals.
    """

    def __init__(
        self,
        engine: SpeechEngine,
        config: pb.StreamingConfig,
        *,
        beam_size: int,
        end_of_utterance_ms: int,
        max_utterance_seconds: float,
    ) -> None:
        self._engine = engine
        self._config = config
        self._beam_size = beam_size
        self._decoder = StreamDecoder(config.audio_format)
        channels = self._decoder.channels
        self._roles = list(config.channel_roles) or [call_pb2.SPEAKER_ROLE_MIXED] * channels
        self._cutters = [
            UtteranceCutter(end_silence_ms=end_of_utterance_ms, max_seconds=max_utterance_seconds)
            for _ in range(channels)
        ]
        self._counts = [0] * channels
        self._partial_at = [0.0] * channels
        self._jobs: asyncio.Queue[_Job | BaseException | object] = asyncio.Queue()
        self._finals_waiting = 0
        self._busy = False

    @property
    def seconds_received(self) -> float:
        return self._decoder.seconds_received

    async def run(
        self, audio: AsyncIterator[bytes]
    ) -> AsyncIterator[pb.StreamingTranscribeResponse]:
        yield pb.StreamingTranscribeResponse(
            engine_status=pb.EngineStatus(engine=self._engine.name, model=self._engine.model_name)
        )
        producer = asyncio.create_task(self._produce(audio))
        try:
            while (job := await self._jobs.get()) is not _END:
                if isinstance(job, BaseException):
                    raise job
                assert isinstance(job, _Job)
                segment = await self._transcribe(job)
                if segment is not None:
                    yield pb.StreamingTranscribeResponse(segment=segment)
        finally:
            producer.cancel()

    async def _produce(self, audio: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in audio:
                self._cut(self._decoder.decode(chunk))
            self._cut(self._decoder.decode(b"", last=True), flush=True)
            self._jobs.put_nowait(_END)
        except Exception as error:
            self._jobs.put_nowait(error)

    def _cut(self, channels: list[Samples], flush: bool = False) -> None:
        for index, (cutter, samples) in enumerate(zip(self._cutters, channels, strict=True)):
            closed = cutter.push(samples)
            if flush:
                closed += cutter.flush()
            for utterance in closed:
                self._schedule(index, utterance, final=True)
            if self._config.interim_results and not flush:
                self._maybe_partial(index, cutter)

    def _maybe_partial(self, channel: int, cutter: UtteranceCutter) -> None:
        if self._finals_waiting or self._busy:
            return
        open_utterance = cutter.open_utterance()
        if open_utterance is None or open_utterance.seconds < self._partial_at[channel]:
            return
        self._partial_at[channel] = open_utterance.seconds + PARTIAL_EVERY_SECONDS
        self._schedule(channel, open_utterance, final=False)

    def _schedule(self, channel: int, utterance: Utterance, *, final: bool) -> None:
        segment_id = f"{channel}-{self._counts[channel]}"
        if final:
            self._counts[channel] += 1
            self._partial_at[channel] = PARTIAL_EVERY_SECONDS
            self._finals_waiting += 1
        self._jobs.put_nowait(_Job(channel, segment_id, utterance, final))

    async def _transcribe(self, job: _Job) -> call_pb2.TranscriptSegment | None:
        self._busy = True
        try:
            recognised = await self._engine.transcribe(
                job.utterance.audio,
                language=self._config.language_code,
                hotwords=list(self._config.hotwords),
                # Partials are provisional: greedy decoding is good enough and cheaper.
                beam_size=self._beam_size if job.final else 1,
            )
        finally:
            self._busy = False
            if job.final:
                self._finals_waiting -= 1
        segment = to_segment(
            recognised,
            segment_id=job.segment_id,
            channel=job.channel,
            speaker=self._roles[job.channel],
            offset=job.utterance.start / SAMPLE_RATE,
            is_final=job.final,
            audio_seconds=job.utterance.seconds,
        )
        if job.final:
            log.debug(
                "utterance transcribed",
                segment_id=job.segment_id,
                seconds=round(job.utterance.seconds, 2),
                text=segment.text if segment else "",
            )
        return segment
