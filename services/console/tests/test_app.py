"""The console as a process: settings errors stop it with a message; SIGTERM drains it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _console(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "callcue.console"],
        env={**os.environ, "CALLCUE_LOG_FORMAT": "json", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_without_a_database_it_stops_with_a_message() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "callcue.console"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "DATABASE_URL is required" in result.stderr


def test_sigterm_turns_it_not_ready_and_it_exits_cleanly(database_url: str) -> None:
    port = _free_port()
    process = _console(
        {
            "DATABASE_URL": database_url,
            "CALLCUE_HOST": "127.0.0.1",
            "CALLCUE_PORT": str(port),
            "CALLCUE_METRICS_PORT": "0",
        }
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the console did not become ready")
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "shutdown requested" in output and '"stopped"' in output
    finally:
        if process.poll() is None:
            process.kill()
