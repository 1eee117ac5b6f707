"""The shared evaluation audio (../shared/eval) and how transcripts are scored."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import soxr
from faster_whisper.audio import decode_audio
from whisper_normalizer.english import EnglishTextNormalizer

_normalise = EnglishTextNormalizer()
_TURN = re.compile(r"^\[\s*[\d.]+-\s*[\d.]+\]\s+(AGENT|CALLER):\s*(.*)$")


@dataclass(frozen=True)
class Call:
    name: str
    audio: Path
    reference: str
    agent: Path
    caller: Path

    def load(self, rate: int = 8000, path: Path | None = None) -> np.ndarray:
        """The audio at its own rate (8 kHz for the phone calls), float32 mono."""
        return decode_audio(str(path or self.audio), sampling_rate=rate)

    def load_16k(self, path: Path | None = None) -> np.ndarray:
        """Resampled with soxr's HQ filter, as the transcriber does."""
        return soxr.resample(self.load(path=path), 8000, 16000, quality="HQ").astype(np.float32)

    def spoken_by(self, speaker: str) -> str:
        """What AGENT or CALLER said, from the turns file: the reference of that channel."""
        turns = self.audio.with_suffix(".turns.txt").read_text().splitlines()
        matched = (_TURN.match(line) for line in turns)
        return " ".join(m.group(2) for m in matched if m and m.group(1) == speaker)


def hvb_calls(eval_dir: Path, limit: int | None = None) -> list[Call]:
    folder = eval_dir / "hvb_calls"
    if not folder.is_dir():
        raise SystemExit(
            f"no hvb_calls in {eval_dir}: pass the shared eval folder (../shared/eval)"
        )
    calls = [
        Call(
            name=flac.stem,
            audio=flac,
            reference=flac.with_suffix(".txt").read_text(),
            agent=folder / "channels" / f"{flac.stem}.agent.flac",
            caller=folder / "channels" / f"{flac.stem}.caller.flac",
        )
        for flac in sorted(folder.glob("*.flac"))
    ]
    return calls[:limit] if limit else calls


PLAYBOOK = Path(__file__).parent / "hvb_playbook.yaml"


def hotword_list(argument: str) -> list[str]:
    """``--hotwords``: comma-separated phrases, or 'playbook' for the phrases of the bank
    playbook the detector bench uses."""
    if argument == "playbook":
        from callcue.detector import playbook_file

        parsed = playbook_file.parse(PLAYBOOK.read_bytes())
        return [keyword.phrase for keyword in parsed.keywords if keyword.phrase]
    return [phrase.strip() for phrase in argument.split(",") if phrase.strip()]


def normalise(text: str) -> str:
    return _normalise(text)


def wer(references: list[str], hypotheses: list[str]) -> jiwer.WordOutput:
    return jiwer.process_words(
        [normalise(r) for r in references], [normalise(h) or "<empty>" for h in hypotheses]
    )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def describe(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s, "
        f"max {max(values):.2f} s (n={len(values)})"
    )
