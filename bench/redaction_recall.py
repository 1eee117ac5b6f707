"""Recall and precision of the gateway's card and social security number masking on read-out
numbers: utterances synthesised with espeak-ng (a different voice each), passed through an
8 kHz phone line (mu-law), transcribed by tiny.en as the service does, then masked.

Positives: Luhn-valid card numbers (Visa, Mastercard 16 digits, Amex 15) and SSNs, said
digit by digit in groups, in pairs ("forty one, eleven"), with "double", and inside carrier
sentences; negatives: phone numbers, 16-digit order numbers that fail the Luhn check, amounts.
Prints per type how many were masked (a card or SSN counts as protected when no five of its
digits in a row but the last four are left in clear; tiny.en mishears many), the false
masks, and the time masking takes.

    uv run python bench/redaction_recall.py [--count 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

from callcue.gateway.redaction import luhn_valid, redact_text
from callcue.transcriber.engine import resolve_model

UNITS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb+m4", "en-us+f4", "en-029"]


@dataclass(frozen=True)
class Utterance:
    kind: str  # card, ssn, or a negative's kind
    digits: str
    text: str


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("34", 15)])
    while True:
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        for check in "0123456789":
            if luhn_valid(body + check):
                return body + check


def pairs(group: str) -> str:
    out = []
    for start in range(0, len(group), 2):
        pair = group[start : start + 2]
        if len(pair) == 1 or pair[0] == "0":
            out += [UNITS[int(c)] for c in pair]
        elif pair[0] == "1":
            out.append(TEENS[int(pair[1])])
        else:
            out.append(TENS[int(pair[0])] + ("" if pair[1] == "0" else f" {UNITS[int(pair[1])]}"))
    return " ".join(out)


def say(digits: str, groups: list[int], style: str) -> str:
    parts, position = [], 0
    for size in groups:
        group = digits[position : position + size]
        position += size
        if style == "pairs":
            parts.append(pairs(group))
        elif style == "double":
            words, index = [], 0
            while index < len(group):
                if index + 1 < len(group) and group[index] == group[index + 1]:
                    words.append(f"double {UNITS[int(group[index])]}")
                    index += 2
                else:
                    words.append(UNITS[int(group[index])])
                    index += 1
            parts.append(" ".join(words))
        else:
            parts.append(" ".join(UNITS[int(c)] for c in group))
    return ", ".join(parts)


def utterances(count: int, rng: random.Random) -> list[Utterance]:
    made = []
    for index in range(count):
        style = ["digits", "pairs", "double"][index % 3]
        number = card(rng)
        groups = [4, 6, 5] if len(number) == 15 else [4, 4, 4, 4]
        carrier = rng.choice(
            [
                "Sure, my card number is {}.",
                "It's {}, and it expires in March.",
                "The card is {}.",
                "Okay, {}.",
            ]
        )
        made.append(Utterance("card", number, carrier.format(say(number, groups, style))))
        ssn = f"{rng.randint(100, 665)}{rng.randint(10, 99)}{rng.randint(1000, 9999)}"
        made.append(
            Utterance(
                "ssn",
                ssn,
                rng.choice(
                    [
                        "My social security number is {}.",
                        "The social is {}.",
                        "Yes, my S S N is {}.",
                    ]
                ).format(say(ssn, [3, 2, 4], "digits" if index % 2 else "pairs")),
            )
        )
        phone = f"{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randint(1000, 9999)}"
        made.append(
            Utterance("phone", phone, f"You can call me back on {say(phone, [3, 3, 4], 'digits')}.")
        )
        order = card(rng)
        order = order[:-1] + str((int(order[-1]) + 1) % 10)  # fails the Luhn check
        made.append(
            Utterance("order", order, f"The order number is {say(order, [4, 4, 4, 4], 'digits')}.")
        )
    return made


def speak(text: str, voice: str, folder: Path, index: int) -> np.ndarray:
    wav = folder / f"{index}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    audio = decode_audio(str(wav), sampling_rate=16000)
    # A phone line: 8 kHz, mu-law (the quantisation), back to 16 kHz for Whisper.
    phone = soxr.resample(audio, 16000, 8000)
    mu = np.sign(phone) * np.log1p(255 * np.abs(np.clip(phone, -1, 1))) / np.log1p(255)
    mu = np.round(mu * 127) / 127
    phone = np.sign(mu) * np.expm1(np.abs(mu) * np.log1p(255)) / 255
    return soxr.resample(phone.astype(np.float32), 8000, 16000)


def leaks(digits: str, shown: str) -> bool:
    """Whether five digits in a row of the number (the last four aside) are left in clear."""
    clear = re.sub(r"\[[A-Z]+ [^\]]*\]|\[NUMBER\]", " ", shown)
    left = "".join(re.findall(r"\d", clear))
    secret = digits[:-4]
    return any(secret[i : i + 5] in left for i in range(len(secret) - 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="utterances of each kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    model = WhisperModel(resolve_model("bundled"), device="cpu", compute_type="int8", cpu_threads=2)
    said = utterances(args.count, rng)
    masked: dict[str, int] = {}
    totals: dict[str, int] = {}
    wrong: list[tuple[str, str]] = []
    masking_seconds = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for index, utterance in enumerate(said):
            audio = speak(utterance.text, VOICES[index % len(VOICES)], Path(folder), index)
            segments, _ = model.transcribe(audio, beam_size=5, language="en")
            heard = " ".join(segment.text.strip() for segment in segments)
            started = time.perf_counter()
            shown = redact_text(heard)
            masking_seconds += time.perf_counter() - started
            totals[utterance.kind] = totals.get(utterance.kind, 0) + 1
            if utterance.kind in ("card", "ssn"):
                if not leaks(utterance.digits, shown):
                    masked[utterance.kind] = masked.get(utterance.kind, 0) + 1
                else:
                    wrong.append((utterance.kind, f"{heard!r} -> {shown!r}"))
            elif shown != heard:
                masked[utterance.kind] = masked.get(utterance.kind, 0) + 1
                wrong.append((utterance.kind, f"false mask: {heard!r} -> {shown!r}"))
    print("| kind | said | masked |\n|---|---|---|")
    for kind, total in totals.items():
        print(f"| {kind} | {total} | {masked.get(kind, 0)} |")
    print(f"\nmasking: {masking_seconds / len(said) * 1e6:.0f} us per utterance")
    for kind, line in wrong:
        print(f"  {kind}: {line}")


if __name__ == "__main__":
    main()
