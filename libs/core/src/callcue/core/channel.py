"""Client channels from one service to another."""

from __future__ import annotations

import json

import grpc

from callcue.core.credentials import MetadataSource, interceptors

# round_robin spreads streams over every address a headless Service's DNS name
# returns; pick_first (the default) would pin all calls to one replica.
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def open_channel(
    target: str,
    max_message_bytes: int = 8 * 1024 * 1024,
    *,
    credentials: MetadataSource | None = None,
    tls: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A channel to ``target``; ``credentials`` supplies the auth metadata of each call,
    ``tls`` (from ``grpc.ssl_channel_credentials``) encrypts it."""
    options: list[tuple[str, str | int]] = [
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Detects a dead peer on an idle call stream within ~40 s instead of hanging.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
    attached = interceptors(credentials) if credentials else None
    if tls is not None:
        return grpc.aio.secure_channel(target, tls, options=options, interceptors=attached)
    return grpc.aio.insecure_channel(target, options=options, interceptors=attached)
