"""Phone calls through the telephony service against the same calls sent straight to the
gateway: the whole system as separate processes, hvb_calls' two channels (agent, caller)
streamed at real-time pace as Twilio Media Streams (mu-law tracks), Genesys AudioHook
(stereo PCMU) and FreeSWITCH mod_audio_stream (stereo L16), and as a gRPC StreamCall of
the same stereo L16 audio.

Per path: WER of the finals against the reference (both speakers), the delay of each
confirmed talking point at a notifier subscriber after its words ended, and the CPU the
telephony process used per second of call audio.

    uv run python bench/telephony_calls.py ../shared/eval [--limit 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import psutil
from detector_quality import load_playbook
from evaldata import Call, hvb_calls, percentile, wer

from callcue.call.v1 import call_pb2
from callcue.cli import devstack
from callcue.core import api_keys, database, scopes
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.postgres import create_database, drop_database
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc
from callcue.telephony import testing
from callcue.telephony.connectors import ConnectorStore, Protocol
from callcue.telephony.sealing import SecretBox, new_key

PLAYBOOK = "hvb-bank"
TWILIO_TOKEN = "bench-twilio-token"
PATHS = ("grpc", "twilio", "audiohook", "freeswitch")


@dataclass
class Result:
    path: str
    references: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    telephony_cpu: float = 0.0


def channels(call: Call) -> tuple[np.ndarray, np.ndarray]:
    """(agent, caller) as 8 kHz int16 of equal length."""
    agent, caller = (
        (np.clip(call.load(8000, path), -1, 1) * 32767).astype(np.int16)
        for path in (call.agent, call.caller)
    )
    length = max(len(agent), len(caller))
    return np.pad(agent, (0, length - len(agent))), np.pad(caller, (0, length - len(caller)))


async def grpc_call(
    gateway: str, key: str, agent: np.ndarray, caller: np.ndarray, title: str
) -> None:
    stereo = np.stack([agent, caller], axis=1).astype("<i2").tobytes()
    config = pb.CallConfig(
        audio_format=call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=8000, channel_count=2
        ),
        channel_roles=[call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT],
        interim_results=True,
        title=title,
        metadata={"bench_id": title},
        playbook_ids=[PLAYBOOK],
    )
    chunk = 8000 * 2 * 2 // 10  # 100 ms

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=config)
        started = time.monotonic()
        for index, begin in enumerate(range(0, len(stereo), chunk)):
            await asyncio.sleep(max(0.0, started + index * 0.1 - time.monotonic()))
            yield pb.StreamCallRequest(audio=stereo[begin : begin + chunk])

    async with open_channel(gateway, credentials=api_key(key)) as channel:
        async for _ in gateway_service_pb2_grpc.GatewayServiceStub(channel).StreamCall(requests()):
            pass


async def follow(
    notifier: str, gateway: str, key: str, bench_id: str, started: float
) -> tuple[str, list[float]]:
    """Waits for the call's session, then reads it as a separate subscriber: its final text
    and each confirmed talking point's delay after its words ended."""
    credentials = api_key(key)
    async with open_channel(gateway, credentials=credentials) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        while True:
            listed = await stub.ListSessions(pb.ListSessionsRequest(page_size=100))
            found = [s for s in listed.sessions if s.metadata.get("bench_id") == bench_id]
            if found:
                session_id = found[0].session_id
                break
            await asyncio.sleep(0.05)
    finals: list[tuple[float, str]] = []
    first_seen: dict[str, tuple[float, float]] = {}
    confirmed: set[str] = set()
    async with open_channel(notifier, credentials=credentials) as channel:
        stub_n = notifier_service_pb2_grpc.SubscriberServiceStub(channel)
        async for event in _events(stub_n, session_id):
            if event.HasField("transcript") and event.transcript.is_final:
                finals.append(
                    (event.transcript.start_offset.ToNanoseconds(), event.transcript.text)
                )
            elif event.HasField("detection"):
                detection = event.detection
                end = detection.end_offset.ToNanoseconds() / 1e9
                first_seen.setdefault(detection.detection_id, (time.monotonic(), end))
                if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
                    confirmed.add(detection.detection_id)
    delays = [first_seen[d][0] - (started + first_seen[d][1]) for d in confirmed]
    return " ".join(text for _, text in sorted(finals)), delays


async def _events(
    notifier: notifier_service_pb2_grpc.SubscriberServiceAsyncStub, session_id: str
) -> AsyncIterator[call_pb2.CallEvent]:
    """Every event of the session; the notifier knows it once its first event is out."""
    after = 0
    for _ in range(100):
        try:
            request = notifier_pb.SubscribeRequest(session_id=session_id, after_sequence=after)
            async for response in notifier.Subscribe(request):
                after = response.event.sequence
                yield response.event
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the notifier never knew session {session_id}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--limit", type=int, default=3, help="hvb calls per path")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--port-base", type=int, default=54051)
    args = parser.parse_args()
    calls = hvb_calls(args.eval_dir, args.limit)
    name = f"callcue_tel_{uuid.uuid4().hex[:8]}"
    url = await create_database(args.postgres, name)
    os.environ["CALLCUE_LOG_LEVEL"] = "warning"
    secrets_key = new_key()
    logs = Path(tempfile.mkdtemp(prefix="callcue-telephony-"))
    stack = devstack.DevStack(
        devstack.ports_from(args.port_base, 18080, 18090),
        url,
        secrets_key,
        devstack.service_keys(logs),
    )
    processes = devstack.start_services(stack, logs, (*devstack.SERVICES, devstack.TELEPHONY))
    try:
        await devstack.wait_until_serving(stack, processes)
        telephony = psutil.Process(processes[-1].process.pid)
        pool = await database.open_pool(url, max_size=2)
        key = (await api_keys.ApiKeyStore(pool).create_key("bench", "bench", [scopes.ADMIN]))[1]
        store = ConnectorStore(pool, SecretBox(secrets_key))
        connectors = {
            Protocol.TWILIO: await store.create(
                "bench", Protocol.TWILIO, playbook_ids=(PLAYBOOK,), auth_token=TWILIO_TOKEN
            ),
            Protocol.AUDIOHOOK: await store.create(
                "bench", Protocol.AUDIOHOOK, playbook_ids=(PLAYBOOK,)
            ),
            Protocol.FREESWITCH: await store.create(
                "bench", Protocol.FREESWITCH, playbook_ids=(PLAYBOOK,), rep_channel="left"
            ),
        }
        await pool.close()
        async with open_channel(stack.address("detector"), credentials=api_key(key)) as channel:
            detector = detector_service_pb2_grpc.PlaybookServiceStub(channel)
            await detector.CreatePlaybook(
                detector_pb.CreatePlaybookRequest(
                    playbook=detector_pb.Playbook(playbook_id=PLAYBOOK)
                )
            )
            for keyword in load_playbook():
                keyword.keyword_id, keyword.playbook_id = "", PLAYBOOK
                await detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
        base = f"ws://localhost:{stack.ports[devstack.TELEPHONY]}"
        gateway, notifier = stack.address("gateway"), stack.address("notifier")

        def sender(
            path: str, agent: np.ndarray, caller: np.ndarray, bench_id: str
        ) -> Callable[[], Awaitable[object]]:
            if path == "grpc":
                return lambda: grpc_call(gateway, key, agent, caller, bench_id)
            if path == "twilio":
                connector = connectors[Protocol.TWILIO][0]
                media = testing.twilio_media(inbound=caller, outbound=agent)
                return lambda: testing.twilio_call(
                    f"{base}/twilio/{connector.connector_id}",
                    media,
                    call_sid=bench_id,
                    token=TWILIO_TOKEN,
                    custom={"bench_id": bench_id},
                    pace=1.0,
                )
            if path == "audiohook":
                connector, credentials = connectors[Protocol.AUDIOHOOK]

                async def hook() -> None:
                    async with testing.audiohook(
                        f"{base}/audiohook/{connector.connector_id}",
                        credentials.api_key,
                        credentials.client_secret,
                    ) as client:
                        await client.open(str(uuid.uuid4()), custom={"bench_id": bench_id})
                        await client.audio(caller, agent, pace=1.0)
                        await client.close()

                return hook
            connector, credentials = connectors[Protocol.FREESWITCH]
            stereo = np.stack([agent, caller], axis=1)
            return lambda: testing.freeswitch_call(
                f"{base}/freeswitch/{connector.connector_id}?mix=stereo&rate=8000",
                credentials.api_key,
                {"bench_id": bench_id},
                stereo,
                pace=1.0,
            )

        results = []
        for path in args.paths.split(","):
            result = Result(path)
            cpu_before = sum(telephony.cpu_times()[:2])
            for call in calls:
                agent, caller = channels(call)
                bench_id = f"{path}-{call.name}-{uuid.uuid4().hex[:6]}"
                started = time.monotonic()
                following = asyncio.create_task(follow(notifier, gateway, key, bench_id, started))
                await sender(path, agent, caller, bench_id)()
                text, delays = await asyncio.wait_for(following, 120)
                result.references.append(call.reference)
                result.hypotheses.append(text)
                result.delays += delays
                result.audio_seconds += len(agent) / 8000
            result.telephony_cpu = sum(telephony.cpu_times()[:2]) - cpu_before
            results.append(result)
            print(row(result), flush=True)
    finally:
        devstack.stop_services(processes)
        await drop_database(args.postgres, name)
    print("\n| path | WER | talking points | delay p50 | delay p95 | telephony CPU-s per audio s |")
    print("|---|---|---|---|---|---|")
    for result in results:
        print(row(result))


def row(result: Result) -> str:
    scored = wer(result.references, result.hypotheses)
    delays = result.delays or [float("nan")]
    return (
        f"| {result.path} | {scored.wer:.1%} | {len(result.delays)} | "
        f"{statistics.median(delays):.2f} s | {percentile(delays, 0.95):.2f} s | "
        f"{result.telephony_cpu / result.audio_seconds:.4f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
