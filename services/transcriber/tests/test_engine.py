"""The shared engine's queue: live streams before background work, and partials that
cannot run in time given up without holding their stream."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from faster_whisper import WhisperModel

from callcue.transcriber.engine import BUNDLED, Priority, WhisperEngine, resolve_model
from callcue.transcriber.testing import comparable
from callcue.transcriber.whisper_decoder import Hypothesis, WhisperDecoder

if TYPE_CHECKING:
    from conftest import PartyAudio

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"


@pytest.fixture(scope="module")
def model() -> WhisperModel:
    return WhisperModel(
        resolve_model(BUNDLED), device="cpu", compute_type="int8", local_files_only=True
    )


@pytest.fixture
async def engine(model: WhisperModel) -> AsyncIterator[WhisperEngine]:
    one_worker = WhisperEngine(model, "tiny.en", workers=1, beam_size=5, partial_patience=0.3)
    yield one_worker
    one_worker.close()


def utterance() -> np.ndarray:
    with wave.open(str(SAMPLE)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    return (pcm[int(0.2 * 16000) : int(7.0 * 16000)] / 32768).astype(np.float32)


async def test_live_decodes_go_before_a_stream_ahead_of_real_time(engine: WhisperEngine) -> None:
    audio = utterance()
    done: list[str] = []

    async def decode(name: str, *, background: bool) -> None:
        await engine.decode(audio, language="en", background=background)
        done.append(name)

    tasks = [asyncio.create_task(decode(f"ahead {i}", background=True)) for i in range(3)]
    await asyncio.sleep(0.05)  # the first one is running, the others wait
    tasks.append(asyncio.create_task(decode("live", background=False)))
    await asyncio.gather(*tasks)
    # At most the decode already running goes first.
    assert done.index("live") <= 1
    assert done.index("live") < done.index("ahead 1")


async def test_a_partial_behind_finals_is_given_up_while_they_run(engine: WhisperEngine) -> None:
    audio = utterance()
    finals = [asyncio.create_task(engine.decode(audio, language="en")) for _ in range(4)]
    await asyncio.sleep(0.05)
    partial = await engine.decode(audio, language="en", priority=Priority.PARTIAL)
    assert partial is None
    assert not all(final.done() for final in finals)
    assert all(hypothesis and hypothesis.words for hypothesis in await asyncio.gather(*finals))
    assert engine.skipped_partials == 1


async def test_background_work_leaves_a_worker_for_live_streams(model: WhisperModel) -> None:
    engine = WhisperEngine(model, "tiny.en", workers=2, beam_size=5)
    audio = utterance()
    done: list[str] = []

    async def decode(name: str, *, background: bool) -> None:
        await engine.decode(audio, language="en", background=background)
        done.append(name)

    try:
        tasks = [asyncio.create_task(decode(f"ahead {i}", background=True)) for i in range(3)]
        await asyncio.sleep(0.05)
        tasks.append(asyncio.create_task(decode("live", background=False)))
        await asyncio.gather(*tasks)
    finally:
        engine.close()
    # The live decode ran beside the first background one, not after a second.
    assert done.index("live") <= 1
    assert done.index("ahead 1") > done.index("live")


async def test_the_backlog_counts_live_decodes_waiting_per_worker(engine: WhisperEngine) -> None:
    audio = utterance()
    assert engine.backlog() == 0
    live = [asyncio.create_task(engine.decode(audio, language="en")) for _ in range(3)]
    ahead = asyncio.create_task(engine.decode(audio, language="en", background=True))
    await asyncio.sleep(0.05)  # one live decode runs, two wait, and the background one
    assert engine.backlog() == 2
    await asyncio.gather(*live, ahead)
    assert engine.backlog() == 0


@pytest.mark.parametrize("one_party", [True, False])
async def test_a_partys_channel_in_a_file_is_decoded_turn_after_turn(
    engine: WhisperEngine,
    short_turns_call: PartyAudio,
    monkeypatch: pytest.MonkeyPatch,
    one_party: bool,
) -> None:
    """An uploaded channel of one party: its short turns are decoded after its earlier ones
    (never on a mixed channel), and each turn's words come once."""
    decoded: list[float] = []
    decode = WhisperDecoder.decode

    def recorded(self: WhisperDecoder, audio: np.ndarray, **options: Any) -> Hypothesis:
        decoded.append(len(audio) / 16000)
        return decode(self, audio, **options)

    monkeypatch.setattr(WhisperDecoder, "decode", recorded)
    prospect, said = short_turns_call.channels[1], short_turns_call.said[1]
    heard = [
        comparable(word.text)
        async for segment in engine.transcribe_long(
            prospect, language="en", hotwords=[], one_party=one_party
        )
        for word in segment.words
    ]
    assert len(heard) == len(said), heard
    assert sum(a != b for a, b in zip(heard, said, strict=True)) <= 1, heard
    turns = 3  # each turn is under 2.5 s with its padding; joined, two or three of them
    assert len(decoded) == turns
    assert (max(decoded) > 4.0) is one_party, decoded
