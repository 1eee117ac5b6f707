"""The telephony service's Prometheus metrics, beside those every service has."""

from __future__ import annotations

import prometheus_client

OPEN_STREAMS = prometheus_client.Gauge(
    "callcue_telephony_open_streams", "Phone-system streams open, by protocol.", ["protocol"]
)
MESSAGES = prometheus_client.Counter(
    "callcue_telephony_messages_total",
    "WebSocket messages received from phone systems, by protocol.",
    ["protocol"],
)
AUDIO_BYTES = prometheus_client.Counter(
    "callcue_telephony_audio_bytes_total",
    "Audio bytes received from phone systems (as sent, before decoding), by protocol.",
    ["protocol"],
)
PROTOCOL_ERRORS = prometheus_client.Counter(
    "callcue_telephony_protocol_errors_total",
    "Streams ended for breaking their protocol, by protocol and reason.",
    ["protocol", "reason"],
)
REFUSED = prometheus_client.Counter(
    "callcue_telephony_refused_total",
    "Connections refused before any audio, by protocol and reason.",
    ["protocol", "reason"],
)
SILENCE_SECONDS = prometheus_client.Counter(
    "callcue_telephony_silence_filled_seconds_total",
    "Audio filled with silence (missing frames, pauses, reconnects), by protocol.",
    ["protocol"],
)
