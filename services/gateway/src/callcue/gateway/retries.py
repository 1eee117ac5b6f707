"""When a call's stream to another service fails, whether and when to open a new one."""

from __future__ import annotations

import grpc

# Worth another stream: the replica went away, or it was too busy to take the call.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
# Pauses before the next attempts; a stream that delivered anything resets the count.
BACKOFF_SECONDS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)
