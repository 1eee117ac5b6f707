"""The TranscriberService: live streams and whole files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import prometheus_client
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core.audio_format import check_format
from callcue.core.config_first import first_config, receive_upload
from callcue.core.durations import duration
from callcue.core.server import Context
from callcue.transcriber.audio import SAMPLE_RATE
from callcue.transcriber.engine import SpeechEngine
from callcue.transcriber.files import UnreadableAudio, channel_count, decode_file
from callcue.transcriber.segments import make_segment
from callcue.transcriber.settings import Settings
from callcue.transcriber.stream import LiveTranscription
from callcue.transcriber.turn_history import ONE_PARTY
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

log = structlog.get_logger("callcue.transcriber")

# With callcue_transcriber_busy_seconds_total, the real-time factor:
# rate(busy) / rate(audio), CPU-bound model time per second of audio.
AUDIO_SECONDS = prometheus_client.Counter(
    "callcue_transcribed_audio_seconds_total",
    "Seconds of audio transcribed (per channel), live streams or files.",
    ["kind"],
)


# What the autoscaler compares (docs/operations.md): channels carried against the capacity.
LIVE_CHANNELS = prometheus_client.Gauge(
    "callcue_transcriber_live_channels",
    "Channels of the live streams this replica is transcribing.",
)
LIVE_CHANNEL_CAPACITY = prometheus_client.Gauge(
    "callcue_transcriber_live_channel_capacity",
    "Live channels this replica takes before it refuses new streams.",
)
# How long a refused caller is told to wait: a stream ends or the autoscaler adds a replica.
RETRY_AFTER_SECONDS = 5.0
# A replica takes calls over from a lost one up to this multiple of its channels.
TAKEOVER_HEADROOM = 2


class TranscriberService(pb_grpc.TranscriberServiceServicer):
    def __init__(self, engine: SpeechEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._live_channels = 0
        LIVE_CHANNEL_CAPACITY.set(settings.max_live_channels)

    async def StreamingTranscribe(
        self, request_iterator: AsyncIterator[pb.StreamingTranscribeRequest], context: Context
    ) -> AsyncIterator[pb.StreamingTranscribeResponse]:
        config = await first_config(request_iterator)
        if config is None:
            return
        structlog.contextvars.bind_contextvars(session_id=config.session_id)
        channels = check_format(config.audio_format, config.channel_roles)
        _check_takeover(config)
        self._admit(channels, takes_over=config.takes_over)
        live = LiveTranscription(
            self._engine,
            config,
            end_of_utterance_ms=self._settings.end_of_utterance_ms,
            max_utterance_seconds=self._settings.max_utterance_seconds,
            partial_interval=self._settings.partial_interval,
        )
        log.info("stream started", channels=channels, interim=config.interim_results)

        async def audio() -> AsyncIterator[bytes]:
            async for request in request_iterator:
                if request.WhichOneof("request") != "audio":
                    raise errors.invalid_argument("config", "send the config once, first")
                yield request.audio

        self._live_channels += channels
        LIVE_CHANNELS.set(self._live_channels)
        try:
            async for response in live.run(audio()):
                yield response
        finally:
            self._live_channels -= channels
            LIVE_CHANNELS.set(self._live_channels)
        AUDIO_SECONDS.labels("live").inc(live.seconds_received)
        log.info("stream finished", audio_seconds=round(live.seconds_received, 2))

    def _admit(self, channels: int, *, takes_over: bool) -> None:
        """Refuses a new stream before it could make the running ones late: beyond the
        channels this replica is sized for, or while finals already wait for the model. A
        stream taking over a running call may go to twice the channels: its call would end
        otherwise, and the surplus lasts until the autoscaler adds a replica."""
        sized = self._settings.max_live_channels
        capacity = sized * TAKEOVER_HEADROOM if takes_over else sized
        if self._live_channels + channels > capacity:
            beyond = f" (calls taken over: {capacity})" if takes_over else ""
            raise errors.resource_exhausted(
                "transcriber capacity",
                f"this transcriber carries {self._live_channels} of its {sized} live channels"
                f"{beyond} and cannot take {channels} more; retry on another replica or later",
                retry_after=RETRY_AFTER_SECONDS,
            )
        waited = self._engine.oldest_final_wait()
        if waited > self._settings.overload_seconds:
            raise errors.resource_exhausted(
                "transcriber capacity",
                f"the transcriber is overloaded: its oldest final result has waited "
                f"{waited:.1f} s; retry on another replica or later",
                retry_after=RETRY_AFTER_SECONDS,
            )

    async def TranscribeFile(
        self, request_iterator: AsyncIterator[pb.TranscribeFileRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeFileResponse]:
        upload = await receive_upload(request_iterator, self._settings.max_file_bytes, "file")
        config, data = upload.config, upload.data
        del upload
        structlog.contextvars.bind_contextvars(session_id=config.session_id)
        size = len(data)
        try:
            split = bool(config.channel_roles)
            if split:
                found = await asyncio.to_thread(channel_count, data)
                if found != len(config.channel_roles):
                    raise errors.invalid_argument(
                        "config.channel_roles",
                        f"has {len(config.channel_roles)} roles but the file has {found} channels",
                    )
            channels = await asyncio.to_thread(decode_file, data, split_channels=split)
        except UnreadableAudio as error:
            raise errors.invalid_argument("data", str(error)) from None
        del data
        roles = list(config.channel_roles) or [call_pb2.SPEAKER_ROLE_MIXED]
        # Progress counts the work (every channel), reported against the recording's length.
        seconds = len(channels[0]) / SAMPLE_RATE
        work = seconds * len(channels)
        log.info("file decoded", seconds=round(seconds, 2), channels=len(channels), bytes=size)
        done = 0.0
        for index, samples in enumerate(channels):
            count = 0
            async for recognised in self._engine.transcribe_long(
                samples,
                language=config.language_code,
                hotwords=list(config.hotwords),
                one_party=roles[index] in ONE_PARTY,
            ):
                segment = make_segment(
                    recognised.words,
                    segment_id=f"{index}-{count}",
                    channel=index,
                    speaker=roles[index],
                    offset=0.0,
                    is_final=True,
                    language=recognised.language,
                )
                count += 1
                if segment is not None:
                    yield pb.TranscribeFileResponse(segment=segment)
                yield _progress((done + recognised.end) / work, seconds)
            done += len(samples) / SAMPLE_RATE
            AUDIO_SECONDS.labels("file").inc(len(samples) / SAMPLE_RATE)
        yield _progress(1.0, seconds)


def _progress(fraction: float, seconds: float) -> pb.TranscribeFileResponse:
    fraction = min(fraction, 1.0)
    return pb.TranscribeFileResponse(
        progress=pb.Progress(
            percent=100.0 * fraction,
            processed=duration(fraction * seconds),
            total=duration(seconds),
        )
    )


MAX_SEGMENT_ID_PREFIX = 32
# A gateway keeps a minute of a call's audio to replay; more is not a replay.
MAX_REPLAYED_SECONDS = 120


def _check_takeover(config: pb.StreamingConfig) -> None:
    """A stream taking a call over starts at a point in it and numbers apart."""
    if config.call_offset.seconds < 0 or config.call_offset.nanos < 0:
        raise errors.invalid_argument("config.call_offset", "must not be negative")
    replayed = config.replayed.ToNanoseconds() / 1e9
    if not 0 <= replayed <= MAX_REPLAYED_SECONDS:
        raise errors.invalid_argument(
            "config.replayed", f"must be between 0 and {MAX_REPLAYED_SECONDS} seconds"
        )
    prefix = config.segment_id_prefix
    if len(prefix) > MAX_SEGMENT_ID_PREFIX or not prefix.isprintable():
        raise errors.invalid_argument(
            "config.segment_id_prefix",
            f"must be at most {MAX_SEGMENT_ID_PREFIX} printable characters",
        )
