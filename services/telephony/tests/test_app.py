"""Health, and a SIGTERM's drain: running calls finish, new ones are refused."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.request

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callcue.call.v1 import call_pb2
from callcue.core.testing import Stack
from callcue.telephony import app
from callcue.telephony.connectors import Protocol

from .conftest import Service, freeswitch_call, heard, register, serving, session_of, strict


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:  # not listening (yet, or any more)
        return 0


async def test_draining_lets_the_running_call_finish_and_refuses_new_ones(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.FREESWITCH, sales_playbook, rep_channel="mixed")
    telephony = strict(service)
    readiness = app.Readiness()
    async with serving(telephony, readiness) as base:
        http = base.replace("ws://", "http://")
        assert await asyncio.to_thread(_status, f"{http}/readyz") == 200
        url = f"{base}/freeswitch/{registered.connector.connector_id}"
        mono = pcm8k[: 12 * 8000, 1].copy()
        running = asyncio.create_task(
            freeswitch_call(
                url, registered.credentials.api_key, {"uuid": "fs-drain"}, mono, pace=2.0
            )
        )
        await asyncio.sleep(1.5)
        assert telephony.streams == 1
        drained = asyncio.create_task(app.drain(telephony, readiness, grace_seconds=60))
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(_status, f"{http}/readyz") == 503
        assert await asyncio.to_thread(_status, f"{http}/healthz") == 200
        headers = {"Authorization": f"Bearer {registered.credentials.api_key}"}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 503
        assert not drained.done()  # waits for the call
        ws = await running
        await asyncio.wait_for(drained, 30)
    assert ws.close_code == 1000
    session = await session_of(stack, "uuid", "fs-drain")
    call = await heard(stack, session.session_id)
    assert call.state == call_pb2.CALL_STATE_ENDED
    assert seconds_of(session) == pytest.approx(12.0, abs=0.05)


def seconds_of(session: object) -> float:
    duration = session.audio_duration  # type: ignore[attr-defined]
    return float(duration.seconds + duration.nanos / 1e9)


async def test_sigterm_to_the_process_lets_a_running_call_end_first(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray, database_url: str
) -> None:
    registered = await register(service, Protocol.FREESWITCH, sales_playbook, rep_channel="mixed")
    port, grpc_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CALLCUE_HOST": "127.0.0.1",
        "CALLCUE_PORT": str(port),
        "CALLCUE_TELEPHONY_GRPC_PORT": str(grpc_port),
        "CALLCUE_METRICS_PORT": "0",
        "CALLCUE_GATEWAY_ADDRESS": f"127.0.0.1:{stack.gateway_port}",
        "CALLCUE_TELEPHONY_SECRETS_KEY": service.secrets_key,
        "CALLCUE_SHUTDOWN_GRACE_SECONDS": "60",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcue.telephony", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        http = f"http://127.0.0.1:{port}"
        for _ in range(200):
            if await asyncio.to_thread(_status, f"{http}/readyz") == 200:
                break
            await asyncio.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/freeswitch/{registered.connector.connector_id}"
        mono = pcm8k[: 8 * 8000, 1].copy()
        running = asyncio.create_task(
            freeswitch_call(
                url, registered.credentials.api_key, {"uuid": "fs-sigterm"}, mono, pace=1.0
            )
        )
        await asyncio.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert await asyncio.to_thread(_status, f"{http}/readyz") == 503
        assert process.returncode is None, "it waits for the call"
        ws = await running
        assert ws.close_code == 1000
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    session = await session_of(stack, "uuid", "fs-sigterm")
    call = await heard(stack, session.session_id)
    assert call.state == call_pb2.CALL_STATE_ENDED
    assert seconds_of(session) == pytest.approx(8.0, abs=0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
