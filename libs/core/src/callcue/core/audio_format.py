"""The raw audio formats callcue accepts on live streams."""

from __future__ import annotations

from collections.abc import Iterable

from callcue.call.v1 import call_pb2
from callcue.core import errors

MIN_RATE, MAX_RATE = 8_000, 48_000
MAX_CHANNELS = 8
ENCODINGS = (
    call_pb2.AUDIO_ENCODING_LINEAR16,
    call_pb2.AUDIO_ENCODING_MULAW,
    call_pb2.AUDIO_ENCODING_ALAW,
)


def check_format(
    audio_format: call_pb2.AudioFormat,
    channel_roles: Iterable[int] = (),
    field: str = "config.audio_format",
) -> int:
    """Validates a stream's format (and roles, one per channel); returns its channel count."""
    if audio_format.encoding not in ENCODINGS:
        raise errors.invalid_argument(
            f"{field}.encoding",
            f"unsupported encoding {audio_format.encoding}; use LINEAR16, MULAW or ALAW",
        )
    if not MIN_RATE <= audio_format.sample_rate_hertz <= MAX_RATE:
        raise errors.invalid_argument(
            f"{field}.sample_rate_hertz",
            f"must be {MIN_RATE} to {MAX_RATE}, got {audio_format.sample_rate_hertz}",
        )
    channels = audio_format.channel_count or 1
    if not 1 <= channels <= MAX_CHANNELS:
        raise errors.invalid_argument(
            f"{field}.channel_count", f"must be 1 to {MAX_CHANNELS}, got {channels}"
        )
    roles = list(channel_roles)
    if roles and len(roles) != channels:
        raise errors.invalid_argument(
            "config.channel_roles", f"has {len(roles)} roles for {channels} channels"
        )
    if any(role not in call_pb2.SpeakerRole.values() for role in roles):
        raise errors.invalid_argument("config.channel_roles", "contains an unknown role")
    return channels


def bytes_per_second(audio_format: call_pb2.AudioFormat) -> int:
    sample_bytes = 2 if audio_format.encoding == call_pb2.AUDIO_ENCODING_LINEAR16 else 1
    return sample_bytes * (audio_format.channel_count or 1) * audio_format.sample_rate_hertz
