"""When a call's stream to another service fails, whether and when to open a new one."""

from __future__ import annotations

import grpc

from callcue.core.backoff import STREAM_PAUSES

# Worth another stream: the replica went away, or it was too busy to take the call.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
# How many failed streams in a row a call tolerates before it gives that service up.
GIVE_UP_AFTER = len(STREAM_PAUSES)
