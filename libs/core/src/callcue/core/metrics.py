"""Prometheus metrics every service exposes on CALLCUE_METRICS_PORT (/metrics).

RPC counts, latency and open streams come from the server interceptor; each service adds
its own (transcription real-time factor, detections, notifier lag) next to the code they
measure. Names follow Prometheus conventions: base units, ``_total`` for counters.
"""

from __future__ import annotations

import prometheus_client
import structlog

log = structlog.get_logger("callcue.metrics")

RPC_SECONDS = prometheus_client.Histogram(
    "callcue_rpc_duration_seconds",
    "Time from the start of an RPC to its status, by method and status code.",
    ["method", "code"],
    # Unary RPCs take milliseconds; call streams last minutes to hours.
    buckets=(0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300, 1800, 7200),
)
ACTIVE_STREAMS = prometheus_client.Gauge(
    "callcue_active_streams", "Streaming RPCs in progress, by method.", ["method"]
)


def serve_metrics(port: int, host: str = "::") -> None:
    """Serves /metrics on its own port from a background thread (0: not at all), on the
    interface the gRPC server listens on."""
    if port:
        prometheus_client.start_http_server(port, addr=host.strip("[]"))
        log.info("metrics served", port=port, path="/metrics")
