"""google.protobuf.Duration to and from seconds, as the transcript's times are handled."""

from __future__ import annotations

from google.protobuf import duration_pb2


def seconds(value: duration_pb2.Duration) -> float:
    return float(value.ToNanoseconds()) / 1e9


def duration(seconds: float) -> duration_pb2.Duration:
    """The duration of ``seconds``, never negative."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return value
