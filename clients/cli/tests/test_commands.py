"""The callcue command as a user runs it: a subprocess against the real services (all four,
in the test process, on loopback), including what goes wrong."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from callcue.call.v1 import call_pb2
from callcue.cli.client_config import ClientConfig, ConfigError
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as pb

if TYPE_CHECKING:
    from callcue.core.testing import Stack

SAMPLES = Path(__file__).parents[3] / "samples"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def environ(stack: Stack, tmp_path: Path) -> dict[str, str]:
    """A user's environment pointing at the stack, with no config file and no .run/."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLCUE_")},
        "CALLCUE_GATEWAY": f"127.0.0.1:{stack.gateway_port}",
        "CALLCUE_NOTIFIER": f"127.0.0.1:{stack.notifier_port}",
        "CALLCUE_DETECTOR": f"127.0.0.1:{stack.detector_port}",
        "CALLCUE_API_KEY": stack.api_key,
        "CALLCUE_CONFIG": str(tmp_path / "config.toml"),
    }


async def callcue(environ: dict[str, str], cwd: Path, *args: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcue.cli",
        *args,
        env=environ,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def on_a_terminal(environ: dict[str, str], cwd: Path, *args: str) -> Result:
    """The command with its output on a pseudo-terminal 100 x 40, as a person runs it;
    ``out`` is what it wrote there, escape sequences removed."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcue.cli",
        *args,
        env={**environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"},
        cwd=cwd,
        stdout=terminal,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(terminal)

    def read_screen() -> bytes:
        written = bytearray()
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not data:
                break
            written += data
        return bytes(written)

    screen, (_, err) = await asyncio.wait_for(
        asyncio.gather(asyncio.to_thread(read_screen), process.communicate()), 180
    )
    os.close(main)
    assert process.returncode is not None
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", screen.decode())
    return Result(process.returncode, text, err.decode())


async def test_a_call_on_a_terminal_gets_the_live_screen(
    stack: Stack, environ: dict[str, str], tmp_path: Path, playbook: str
) -> None:
    await stack.detector.CreateKeyword(
        detector_pb.CreateKeywordRequest(
            keyword=detector_pb.Keyword(
                playbook_id=playbook,
                phrase="too expensive",
                talking_point=call_pb2.TalkingPoint(
                    title="Price objection",
                    body="1. Acknowledge\n2. Reframe on value",
                    category=call_pb2.TALKING_POINT_CATEGORY_PRICING,
                    priority=90,
                ),
            )
        )
    )
    wav = str(SAMPLES / "sales_call.wav")
    shown = await on_a_terminal(environ, tmp_path, "call", wav, "--fast", "--playbook", playbook)
    assert shown.code == 0, shown.err
    assert "call: Hi Jordan" in shown.out
    assert '▶ Price objection  heard "too expensive' in shown.out
    assert "╭─ Price objection  pricing · priority 90" in shown.out  # the card
    assert "1 Acknowledge" in shown.out  # its Markdown body
    status = [line for line in shown.out.splitlines() if line.startswith("■ ended")]
    assert status and "faster-whisper · tiny.en (bundled) │ 1 card" in status[-1]

    plain = await on_a_terminal(environ, tmp_path, "call", wav, "--fast", "--plain")
    assert plain.code == 0, plain.err
    assert "call: Hi Jordan" in plain.out and "╭─" not in plain.out and "■ ended" not in plain.out
    piped = await callcue(environ, tmp_path, "call", wav, "--fast", "--playbook", playbook)
    assert "\x1b[" not in piped.out and "TALKING POINT [pricing, priority 90] Price objection" in (
        piped.out
    )


async def a_call(stack: Stack, seconds: float = 8.0) -> str:
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(int(16000 * seconds))

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(
            config=pb.CallConfig(
                title="cli test call",
                audio_format=call_pb2.AudioFormat(
                    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000
                ),
            )
        )
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])

    events = [r.event async for r in stack.gateway.StreamCall(requests())]
    return events[0].session_id


async def test_sessions_show_export_summary_and_watch(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    session = await a_call(stack)
    listed = await callcue(environ, tmp_path, "sessions", "ls", "--json", "--limit", "50")
    assert listed.code == 0, listed.err
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert session in {row["session_id"] for row in rows}

    shown = await callcue(environ, tmp_path, "sessions", "show", session)
    assert shown.code == 0 and "cli test call" in shown.out and "ended" in shown.out

    exported = await callcue(
        environ, tmp_path, "sessions", "export", session, "--format", "srt", "-o", "call.srt"
    )
    assert exported.code == 0, exported.err
    subtitles = await asyncio.to_thread((tmp_path / "call.srt").read_text)
    assert subtitles.startswith("1\n00:00:") and "Jordan" in subtitles

    summary = json.loads((await callcue(environ, tmp_path, "summary", session, "--json")).out)
    assert summary["session_id"] == session and summary["talk_times"][0]["word_count"] > 5

    watched = await callcue(environ, tmp_path, "watch", session, "--json")
    assert watched.code == 0, watched.err
    events = [json.loads(line) for line in watched.out.splitlines()]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"]["state"] == "CALL_STATE_ENDED"
    resumed = await callcue(environ, tmp_path, "watch", session, "--json", "--after", "3")
    assert [json.loads(line) for line in resumed.out.splitlines()] == events[3:]


async def test_upload_shows_progress_then_the_transcript_with_speakers(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    flac = str(SAMPLES / "sales_call_stereo.flac")
    uploaded = await callcue(environ, tmp_path, "upload", flac, "--stereo-roles", "rep,prospect")
    assert uploaded.code == 0, uploaded.err
    assert "uploading [##############################] 100%" in uploaded.err
    assert "processing: 100%" in uploaded.out
    assert "rep: Hi Jordan" in uploaded.out and "prospect:" in uploaded.out
    assert "recording processed (CALL_STATE_ENDED)" in uploaded.out


async def test_a_supervisor_watches_every_live_call(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    watcher = asyncio.create_task(
        callcue(environ, tmp_path, "watch", "--all", "--json", "--count", "3")
    )
    await asyncio.sleep(4)  # the CLI starts and subscribes (from then on: no history)
    session = await a_call(stack, seconds=8.0)
    watched = await asyncio.wait_for(watcher, 60)
    assert watched.code == 0, watched.err
    events = [json.loads(line) for line in watched.out.splitlines()]
    assert [e["session_id"] for e in events] == [session] * 3
    first = int(events[0]["sequence"])
    assert [int(e["sequence"]) for e in events] == [first, first + 1, first + 2]


async def test_mistakes_get_a_clear_message_not_a_traceback(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    no_key = {k: v for k, v in environ.items() if k != "CALLCUE_API_KEY"}
    cases = [
        (no_key, ["sessions", "ls"], 2, "no API key: pass --api-key"),
        (environ, ["sessions", "ls", "--api-key", "cc_0123456789ab_" + "x" * 43], 1, "refused"),
        (environ, ["summary", "00000000-0000-0000-0000-000000000000"], 1, "not found: session"),
        (environ, ["sessions", "ls", "--gateway", "127.0.0.1:9"], 1, "cannot reach the server"),
        (environ, ["upload", "nowhere.wav"], 2, "No such file"),
        (environ, ["call", str(SAMPLES / "sales_call.txt")], 2, "sales_call.txt: no audio in it"),
        (environ, ["upload", "x.wav", "--stereo-roles", "rep,boss"], 2, "unknown role 'boss'"),
        (environ, ["watch"], 2, "name a SESSION to watch, or --all"),
        (environ, ["call"], 2, "stream a FILE or --mic, one of the two"),
        # No PortAudio, or no input device, on the CI machines: the message says which.
        (environ, ["call", "--mic"], 2, "no microphone: "),
    ]
    for env, args, code, message in cases:
        result = await callcue(env, tmp_path, *args)
        assert (result.code, message in result.err) == (code, True), (args, result.err)
        assert "Traceback" not in result.err


async def test_the_config_file_supplies_the_key_and_bad_files_are_named(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    config = Path(environ["CALLCUE_CONFIG"])
    without_key = {k: v for k, v in environ.items() if k != "CALLCUE_API_KEY"}
    await asyncio.to_thread(config.write_text, f'api_key = "{stack.api_key}"\n')
    assert (await callcue(without_key, tmp_path, "sessions", "ls")).code == 0
    await asyncio.to_thread(config.write_text, "api_key = \n")
    broken = await callcue(without_key, tmp_path, "sessions", "ls")
    assert broken.code == 2 and "not valid TOML" in broken.err
    await asyncio.to_thread(config.write_text, 'gatway = "x"\n')
    typo = await callcue(without_key, tmp_path, "sessions", "ls")
    assert typo.code == 2 and "unknown settings gatway" in typo.err


async def test_playbooks_and_keywords_from_the_command_line(
    stack: Stack, environ: dict[str, str], tmp_path: Path
) -> None:
    source = await asyncio.to_thread((Path(__file__).parents[3] / "playbooks/sales.yaml").read_text)
    await asyncio.to_thread(
        (tmp_path / "cli.yaml").write_text,
        source.replace("playbook_id: sales", "playbook_id: cli-sales"),
    )
    imported = await callcue(environ, tmp_path, "playbook", "import", "cli.yaml")
    assert imported.code == 0 and "playbook 'cli-sales': 10 keywords loaded" in imported.out
    again = await callcue(environ, tmp_path, "playbook", "import", "cli.yaml")
    assert again.code == 1 and "already exists (import with replace)" in again.err

    added = await callcue(
        environ, tmp_path, "keyword", "add", "Pipedrive", "--playbook", "cli-sales",
        "--title", "Competitor: Pipedrive", "--category", "competitor", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    keyword_id = json.loads(added.out)["keyword_id"]
    listed = await callcue(
        environ, tmp_path, "keyword", "ls", "--playbook", "cli-sales", "--query", "pipe"
    )
    assert keyword_id in listed.out and "Competitor: Pipedrive" in listed.out
    shown = await callcue(environ, tmp_path, "playbook", "show", "cli-sales")
    assert "cli-sales: B2B sales, 11 keywords" in shown.out
    assert (await callcue(environ, tmp_path, "keyword", "rm", keyword_id)).code == 0
    gone = await callcue(environ, tmp_path, "keyword", "rm", keyword_id)
    assert gone.code == 1 and "not found: keyword" in gone.err

    exported = await callcue(
        environ, tmp_path, "playbook", "export", "cli-sales", "--format", "json", "-o", "out.json"
    )
    assert exported.code == 0, exported.err
    written = json.loads(await asyncio.to_thread((tmp_path / "out.json").read_text))
    assert written["playbook_id"] == "cli-sales" and len(written["keywords"]) == 10
    listing = await callcue(environ, tmp_path, "playbook", "list", "--json")
    assert "cli-sales" in {json.loads(line)["playbook_id"] for line in listing.out.splitlines()}


async def test_bash_completion_knows_the_commands(environ: dict[str, str], tmp_path: Path) -> None:
    script = await callcue(environ, tmp_path, "completion", "bash")
    assert script.code == 0
    await asyncio.to_thread((tmp_path / "callcue.bash").write_text, script.out)
    check = await asyncio.create_subprocess_exec(
        "bash", "-c", f"source {tmp_path / 'callcue.bash'} && complete -p callcue",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    registered, _ = await check.communicate()
    assert check.returncode == 0 and b"callcue" in registered
    for command in ("watch", "upload", "sessions", "summary", "keyword", "playbook"):
        assert command in script.out


def test_tls_settings_resolve_from_flags_and_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until connecting\n")

    def resolve(**flags: str | bool) -> ClientConfig:
        names = ("tls", "ca_cert", "client_cert", "client_key", "api_key")
        return ClientConfig.resolve(argparse.Namespace(**{n: flags.get(n) for n in names}))

    assert resolve(api_key="k").tls is None
    assert resolve(api_key="k", ca_cert=str(ca)).tls is not None
    assert resolve(api_key="k", tls=True).tls is not None
    with pytest.raises(ConfigError, match="go together"):
        resolve(api_key="k", tls=True, client_cert=str(ca))
    with pytest.raises(ConfigError, match="ca-cert: cannot read"):
        resolve(api_key="k", ca_cert=str(tmp_path / "missing.pem"))


async def test_an_admin_sets_what_transcripts_keep(environ: dict[str, str], tmp_path: Path) -> None:
    shown = await callcue(environ, tmp_path, "redaction", "show")
    assert shown.code == 0, shown.err
    assert "phone-number     mask" in shown.out and "payment-card     mask" in shown.out
    try:
        changed = await callcue(environ, tmp_path, "redaction", "set", "phone-number", "drop")
        assert changed.code == 0 and "phone-number     drop" in changed.out
        refused = await callcue(environ, tmp_path, "redaction", "set", "payment-card", "keep")
        assert refused.code != 0 and "always redacted: mask or drop it" in refused.err
        odd = await callcue(environ, tmp_path, "redaction", "set", "phone-number")
        assert odd.code != 0 and "KIND ACTION pairs" in odd.err
    finally:
        await callcue(environ, tmp_path, "redaction", "set", "phone-number", "mask")
