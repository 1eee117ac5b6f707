"""Recall and precision of the gateway's redaction, per kind of personal data, on things
people read out on calls: utterances synthesised with espeak-ng (a different voice each),
passed through an 8 kHz phone line (mu-law), transcribed by tiny.en as the service does,
then redacted.

Positives: Luhn-valid card numbers (Visa, Mastercard 16 digits, Amex 15) and SSNs (said digit
by digit in groups, in pairs, with "double"), phone numbers, bank account numbers, email
addresses (spelt out as people say them), dates of birth and street addresses, each inside a
carrier sentence. Negatives: 16-digit order numbers that fail the Luhn check (masked as
[NUMBER], not as a card), meeting dates and counts, amounts of money.

A positive counts as protected when what would identify it is gone from the text (no five
digits of a number in a row but its last four; the email's name, the birth year, the street
name), and labelled right when its label shows; a negative is wrong when it is masked. With
``--eval`` every turn of the `hvb_calls` references (bank calls) also goes through a call's
Redactor, and what got which label is printed, for precision on real speech.

    uv run python bench/redaction_recall.py [--count 20] [--seed 1] [--eval ../shared/eval]
        [--kinds card,ssn] [--transcripts heard.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
from evaldata import hvb_calls
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

from callcue.call.v1 import call_pb2
from callcue.gateway.redaction import Redactor, luhn_valid, redact_text
from callcue.transcriber.engine import resolve_model

UNITS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb+m4", "en-us+f4", "en-029"]


@dataclass(frozen=True)
class Utterance:
    kind: str  # card, ssn, phone, bank, email, dob, address, or a negative's kind
    # What identifies it: the number's digits, the email's name, the birth year, the street.
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


FIRST = ["jane", "mark", "olivia", "peter", "susan", "david", "maria", "james"]
LAST = ["doe", "smith", "brown", "garcia", "miller", "wilson", "taylor", "clark"]
DOMAINS = ["gmail", "yahoo", "outlook", "example"]
STREETS = ["Maple", "Oak", "Washington", "Lincoln", "Sunset", "Cedar", "Highland", "Park"]
SUFFIXES = ["Street", "Avenue", "Road", "Drive", "Lane", "Boulevard"]
MONTHS = "January February March April May June July August September October November December"


def year_words(year: int) -> str:
    if year >= 2000:
        return "two thousand" + (f" {pairs(str(year % 100))}" if year % 100 else "")
    return f"{TEENS[year // 100 - 10]} {pairs(str(year % 100).zfill(2))}"


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
            Utterance(
                "phone",
                phone,
                rng.choice(
                    [
                        "You can call me back on {}.",
                        "My cell is {}.",
                        "The best number to reach me is {}.",
                    ]
                ).format(say(phone, [3, 3, 4], "digits" if index % 2 else "double")),
            )
        )
        account = "".join(rng.choice("0123456789") for _ in range(rng.choice([8, 10, 12])))
        made.append(
            Utterance(
                "bank",
                account,
                rng.choice(
                    [
                        "My checking account number is {}.",
                        "The account is {}.",
                        "It's my savings account, {}.",
                    ]
                ).format(say(account, [4] * (len(account) // 4), "digits")),
            )
        )
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = rng.choice(DOMAINS)
        made.append(
            Utterance(
                "email",
                f"{first} {last}",
                rng.choice(
                    [
                        "My email is {} dot {} at {} dot com.",
                        "You can email me at {} dot {} at {} dot com.",
                        "Send it to {} {} at {} dot com.",
                    ]
                ).format(first, last, domain),
            )
        )
        year = rng.randint(1940, 2005)
        month, day = rng.choice(MONTHS.split()), rng.randint(1, 28)
        made.append(
            Utterance(
                "dob",
                str(year),
                rng.choice(
                    [
                        "My date of birth is {} {}, {}.",
                        "I was born on {} {}, {}.",
                        "Birthday is {} {} {}.",
                    ]
                ).format(month, day, year_words(year) if index % 2 else year),
            )
        )
        house = rng.randint(10, 9999)
        street = f"{rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
        made.append(
            Utterance(
                "address",
                street.split()[0],
                rng.choice(
                    [
                        "I live at {} {}.",
                        "The address is {} {}, apartment 4.",
                        "Please mail it to {} {}.",
                    ]
                ).format(
                    house if index % 2 else say(str(house), [len(str(house))], "digits"), street
                ),
            )
        )
        order = card(rng)
        order = order[:-1] + str((int(order[-1]) + 1) % 10)  # fails the Luhn check
        made.append(
            Utterance("order", order, f"The order number is {say(order, [4, 4, 4, 4], 'digits')}.")
        )
        made.append(
            Utterance(
                "meeting",
                "",
                rng.choice(
                    [
                        "Can we meet on {} {} at three?",
                        "The invoice from {} {} was paid.",
                        "We have twenty five agents in three offices, since {} {}.",
                    ]
                ).format(rng.choice(MONTHS.split()), rng.randint(1, 28)),
            )
        )
    return made


def amounts(count: int, rng: random.Random) -> list[Utterance]:
    """Money said as Whisper writes it: negatives, drawn apart so the rest stays the same."""
    return [
        Utterance(
            "amount",
            "",
            rng.choice(
                [
                    "Your balance is {} dollars and {} cents, and the last payment was {} dollars.",
                    "I paid {} dollars, then {} dollars and {} cents.",
                ]
            ).format(
                f"{rng.randint(100, 99999):,}", rng.randint(1, 99), f"{rng.randint(10, 9999):,}"
            ),
        )
        for _ in range(count)
    ]


# Each kind's label, as redaction shows it.
LABELS = {
    "card": "[CARD",
    "ssn": "[SSN",
    "phone": "[PHONE",
    "bank": "[ACCOUNT",
    "email": "[EMAIL]",
    "dob": "[DATE OF BIRTH]",
    "address": "[ADDRESS]",
}
NEGATIVES = ("order", "meeting", "amount")


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


def leaks(utterance: Utterance, heard: str, shown: str) -> bool:
    """Whether what identifies the item is left in clear."""
    clear = re.sub(r"\[[A-Z ]+[^\]]*\]|\[NUMBER\]", " ", shown).lower()
    if utterance.kind in ("card", "ssn", "phone", "bank"):
        left = "".join(re.findall(r"\d", clear))
        secret = utterance.digits[:-4]
        return any(secret[i : i + 5] in left for i in range(len(secret) - 4))
    if utterance.kind == "dob":
        year = int(utterance.digits)
        return utterance.digits in clear or year_words(year) in clear or str(year % 100) in clear
    # email and address: their names
    return any(re.search(rf"\b{re.escape(w)}\b", clear) for w in utterance.digits.lower().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="utterances of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval", type=Path, help="the eval folder, for the hvb_calls turns")
    parser.add_argument(
        "--kinds",
        help=f"comma-separated kinds to say (default all: {','.join(LABELS)}; negatives always)",
    )
    parser.add_argument(
        "--transcripts",
        type=Path,
        help="a JSON file of what tiny.en heard: written after a run, read instead of "
        "transcribing again when it exists (to score changed rules on the same speech)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    said = utterances(args.count, rng) + amounts(args.count, random.Random(args.seed + 1))
    if args.kinds:
        wanted = set(args.kinds.split(",")) | set(NEGATIVES)
        said = [u for u in said if u.kind in wanted]
    heard_texts = transcribe(said, args.transcripts)
    protected: dict[str, int] = {}
    labelled: dict[str, int] = {}
    totals: dict[str, int] = {}
    labels_given: dict[str, int] = {}
    wrong_labels: dict[str, int] = {}
    false_masks: dict[str, int] = {}
    misses: list[tuple[str, str]] = []
    masking_seconds = 0.0
    for utterance, heard in zip(said, heard_texts, strict=True):
        started = time.perf_counter()
        shown = redact_text(heard)
        masking_seconds += time.perf_counter() - started
        kind = utterance.kind
        totals[kind] = totals.get(kind, 0) + 1
        for other, label in LABELS.items():
            if label in shown:
                labels_given[other] = labels_given.get(other, 0) + 1
                if other != kind:
                    wrong_labels[other] = wrong_labels.get(other, 0) + 1
                    misses.append((kind, f"labelled {other}: {heard!r} -> {shown!r}"))
        if kind in NEGATIVES:
            if kind != "order" and shown != heard:
                false_masks[kind] = false_masks.get(kind, 0) + 1
                misses.append((kind, f"masked: {heard!r} -> {shown!r}"))
            continue
        if not leaks(utterance, heard, shown):
            protected[kind] = protected.get(kind, 0) + 1
        else:
            misses.append((kind, f"left in clear: {heard!r} -> {shown!r}"))
        if LABELS[kind] in shown:
            labelled[kind] = labelled.get(kind, 0) + 1
    print("| kind | said | protected (recall) | labelled right | its label given | precision |")
    print("|---|---|---|---|---|---|")
    for kind, total in totals.items():
        if kind in NEGATIVES:
            masked = "-" if kind == "order" else f"{false_masks.get(kind, 0)} masked"
            print(f"| {kind} (negative) | {total} | {masked} | - | - | - |")
            continue
        given = labels_given.get(kind, 0)
        right = given - wrong_labels.get(kind, 0)
        precision = f"{right / given:.2f}" if given else "-"
        print(
            f"| {kind} | {total} | {protected.get(kind, 0)} ({protected.get(kind, 0) / total:.2f}) "
            f"| {labelled.get(kind, 0)} | {given} | {precision} |"
        )
    print(f"\nredaction: {masking_seconds / len(said) * 1e6:.0f} us per utterance")
    for kind, line in misses:
        print(f"  {kind}: {line}")
    if args.eval:
        hvb(args.eval)


def transcribe(said: list[Utterance], saved: Path | None) -> list[str]:
    """What tiny.en hears of each utterance, spoken by a voice of its own over a phone line
    (or as ``saved`` holds it, for the same utterances)."""
    texts = [u.text for u in said]
    if saved is not None and saved.exists():
        record = json.loads(saved.read_text())
        if record["said"] != texts:
            raise SystemExit(f"{saved} holds other utterances (another --count, --seed or --kinds)")
        return list(record["heard"])
    model = WhisperModel(resolve_model("bundled"), device="cpu", compute_type="int8", cpu_threads=2)
    heard = []
    with tempfile.TemporaryDirectory() as folder:
        for index, utterance in enumerate(said):
            audio = speak(utterance.text, VOICES[index % len(VOICES)], Path(folder), index)
            segments, _ = model.transcribe(audio, beam_size=5, language="en")
            heard.append(" ".join(segment.text.strip() for segment in segments))
            if (index + 1) % 50 == 0:
                print(f"transcribed {index + 1} / {len(said)}", file=sys.stderr)
    if saved is not None:
        saved.write_text(json.dumps({"said": texts, "heard": heard}, indent=1))
    return heard


def hvb(eval_dir: Path) -> None:
    """Every turn of the hvb_calls references through a call's Redactor, in order, each
    speaker a channel (as a dual-channel call arrives): what got which label."""
    turns = 0
    found: dict[str, list[str]] = {}
    started = time.perf_counter()
    for call in hvb_calls(eval_dir):
        redactor = Redactor()
        said: dict[str, str] = {}
        shown: list[call_pb2.TranscriptSegment] = []
        for index, line in enumerate(call.audio.with_suffix(".turns.txt").read_text().splitlines()):
            match = re.match(r"\[\s*([\d.]+)-\s*([\d.]+)\]\s*(AGENT|CALLER):\s*(.*)", line)
            if not match:
                continue
            start, end, speaker, text = match.groups()
            segment = call_pb2.TranscriptSegment(
                segment_id=f"{call.audio.stem}-{index}",
                text=text,
                is_final=True,
                channel=0 if speaker == "AGENT" else 1,
            )
            segment.start_offset.FromMilliseconds(int(float(start) * 1000))
            segment.end_offset.FromMilliseconds(int(float(end) * 1000))
            said[segment.segment_id] = text
            turns += 1
            shown += redactor.final(segment)
        shown += redactor.flush()
        for segment in shown:
            for label in re.findall(r"\[([A-Z ]+)[^\]]*\]", segment.text):
                found.setdefault(label.strip(), []).append(
                    f"{said[segment.segment_id]!r} -> {segment.text!r}"
                )
    seconds = time.perf_counter() - started
    print(f"\nhvb_calls: {turns} turns, {seconds / turns * 1e6:.0f} us each, labels given:")
    for label, lines in found.items():
        print(f"  {label}: {len(lines)}")
        for shown_line in lines:
            print(f"    {shown_line}")


if __name__ == "__main__":
    main()
