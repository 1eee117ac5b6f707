from __future__ import annotations

import pytest

from callcue.call.v1 import call_pb2
from callcue.core.audio_format import bytes_per_second, check_format
from callcue.core.errors import RpcError


def fmt(encoding: int, rate: int, channels: int = 1) -> call_pb2.AudioFormat:
    return call_pb2.AudioFormat(encoding=encoding, sample_rate_hertz=rate, channel_count=channels)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("audio_format", "roles", "field"),
    [
        (fmt(call_pb2.AUDIO_ENCODING_UNSPECIFIED, 16000), [], "config.audio_format.encoding"),
        (fmt(99, 16000), [], "config.audio_format.encoding"),
        (fmt(call_pb2.AUDIO_ENCODING_LINEAR16, 4000), [], "config.audio_format.sample_rate_hertz"),
        (fmt(call_pb2.AUDIO_ENCODING_LINEAR16, 16000, 9), [], "config.audio_format.channel_count"),
        (fmt(call_pb2.AUDIO_ENCODING_LINEAR16, 16000, 2), [1], "config.channel_roles"),
        (fmt(call_pb2.AUDIO_ENCODING_LINEAR16, 16000, 1), [42], "config.channel_roles"),
    ],
)
def test_bad_formats_name_the_field(
    audio_format: call_pb2.AudioFormat, roles: list[int], field: str
) -> None:
    with pytest.raises(RpcError) as error:
        check_format(audio_format, roles)
    assert error.value.message.startswith(field)


def test_good_format() -> None:
    stereo = fmt(call_pb2.AUDIO_ENCODING_MULAW, 8000, 2)
    assert check_format(stereo, [call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT]) == 2
    assert bytes_per_second(stereo) == 16000
