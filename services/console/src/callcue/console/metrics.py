"""The console's own Prometheus metrics, beside those every service has."""

from __future__ import annotations

import prometheus_client

BROWSER_STREAMS = prometheus_client.Gauge(
    "callcue_console_browser_streams", "Server streams open to browsers, by RPC.", ["rpc"]
)
LOGINS = prometheus_client.Counter(
    "callcue_console_logins_total", "Sign-in attempts, by outcome.", ["outcome"]
)
MICROPHONE_CALLS = prometheus_client.Gauge(
    "callcue_console_microphone_calls", "Calls streaming from a browser microphone."
)
