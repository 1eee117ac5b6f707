"""Card and social security numbers out of transcripts before they are published or stored.

Whisper writes a number read out on a call as digits ("4111 1111 1111 1111",
"4111-1111-..."), as words ("four one one one ...", "forty one eleven", "double five") or a
mix, often split into groups. Tokens that carry digits are joined into runs; a run of 13 to
19 digits that passes the Luhn check is a payment card, masked to its last four
(``[CARD ****1111]``); nine digits written as ddd-dd-dddd, or said in a segment that speaks
of a social security number, are an SSN (``[SSN ***-**-6789]``). The detector gets the
original text in memory, so keywords still fire; what the caller, the notifier, Redis and
PostgreSQL get is the masked copy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callcue.call.v1 import call_pb2

_UNITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
    "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
# Said between the groups of a number without ending it.
_JOINERS = {"dash", "-", "and"}
_SSN_CONTEXT = re.compile(r"\b(social|ssn|s\.s\.n)\b", re.I)
_SSN_WRITTEN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PUNCTUATION = ".,;:!?\"'()"


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _word_digits(word: str) -> str | None:
    """The digits one token says, or None when it says none."""
    bare = word.strip(_PUNCTUATION).lower()
    if not bare:
        return None
    compact = bare.replace("-", "").replace(".", "").replace(",", "")
    if compact.isdigit():
        return compact
    if bare in _UNITS:
        return _UNITS[bare]
    if bare in _TEENS:
        return _TEENS[bare]
    if bare in _TENS:
        return _TENS[bare] + "0"
    tens, _, unit = bare.partition("-")
    if tens in _TENS and unit in _UNITS:
        return _TENS[tens] + _UNITS[unit]
    return None


@dataclass(frozen=True)
class Span:
    """Tokens ``start`` to ``end`` (exclusive) are one number, shown as ``mask``."""

    start: int
    end: int
    mask: str


def _run(tokens: Sequence[str], index: int) -> list[tuple[int, str]]:
    """The digit-bearing tokens from ``index`` on, with the digits each adds, until a word
    that is neither a number nor said between the groups of one."""
    run: list[tuple[int, str]] = []
    repeat = 1
    for position in range(index, len(tokens)):
        bare = tokens[position].strip(_PUNCTUATION).lower()
        said = _word_digits(tokens[position])
        if said is not None:
            previous = tokens[position - 1].strip(_PUNCTUATION).lower() if position else ""
            if len(said) == 1 and run and previous in _TENS and run[-1][1].endswith("0"):
                # "forty one" is 41, not 401
                run[-1] = (run[-1][0], run[-1][1][:-1])
            run.append((position, said * repeat))
            repeat = 1
        elif bare in _REPEAT:
            repeat = _REPEAT[bare]
        elif not (run and bare in _JOINERS):
            break
        elif tokens[position].rstrip().endswith((".", "?", "!")):
            break  # a sentence ends on a word, not inside a number read out in groups
    return run


def find(tokens: Sequence[str], *, ssn_context: bool = False) -> list[Span]:
    """The card and social security numbers among ``tokens`` (words as written). Within a
    run of digits (a card number and its expiry date, say) the longest stretch that is a
    card number is found."""
    spans: list[Span] = []
    index = 0
    while index < len(tokens):
        run = _run(tokens, index)
        if not run:
            index += 1
            continue
        found = _best(tokens, run, ssn_context)
        if found is None:
            index = run[-1][0] + 1
            continue
        spans.append(found)
        index = found.end
    return spans


def _best(tokens: Sequence[str], run: list[tuple[int, str]], ssn_context: bool) -> Span | None:
    best: Span | None = None
    best_length = 0
    for first in range(len(run)):
        digits = ""
        for last in range(first, len(run)):
            digits += run[last][1]
            if len(digits) > 19:
                break
            mask = _mask(digits, tokens[run[first][0] : run[last][0] + 1], ssn_context)
            if mask and len(digits) > best_length:
                best, best_length = Span(run[first][0], run[last][0] + 1, mask), len(digits)
        if best is not None:
            return best  # the earliest start: what follows is searched again after it
    return best


def _mask(digits: str, tokens: Sequence[str], ssn_context: bool) -> str | None:
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[CARD ****{digits[-4:]}]"
    written = len(tokens) == 1 and _SSN_WRITTEN.match(tokens[0].strip(_PUNCTUATION))
    if len(digits) == 9 and (written or ssn_context):
        return f"[SSN ***-**-{digits[-4:]}]"
    return None


def redact_text(text: str) -> str:
    tokens = text.split()
    spans = find(tokens, ssn_context=bool(_SSN_CONTEXT.search(text)))
    if not spans:
        return text
    out: list[str] = []
    index = 0
    for span in spans:
        out += tokens[index : span.start]
        tail = tokens[span.end - 1][len(tokens[span.end - 1].rstrip(_PUNCTUATION)) :]
        out.append(span.mask + tail)
        index = span.end
    out += tokens[index:]
    return " ".join(out)


def redact_segment(segment: call_pb2.TranscriptSegment) -> call_pb2.TranscriptSegment:
    """A copy of ``segment`` with its numbers masked in the text and the words (a masked
    number becomes one word spanning the words it was said in)."""
    context = bool(_SSN_CONTEXT.search(segment.text))
    word_spans = find([w.text for w in segment.words], ssn_context=context)
    text = redact_text(segment.text)
    if text == segment.text and not word_spans:
        return segment
    redacted = call_pb2.TranscriptSegment()
    redacted.CopyFrom(segment)
    redacted.text = text
    if word_spans:
        del redacted.words[:]
        index = 0
        for span in word_spans:
            redacted.words.extend(segment.words[index : span.start])
            first, last = segment.words[span.start], segment.words[span.end - 1]
            word = redacted.words.add(text=span.mask, confidence=first.confidence)
            word.start_offset.CopyFrom(first.start_offset)
            word.end_offset.CopyFrom(last.end_offset)
            index = span.end
        redacted.words.extend(segment.words[index:])
    return redacted


def redact_detection(detection: call_pb2.Detection) -> call_pb2.Detection:
    """A detection fired by words of a masked number: the digits of its matched words go
    too (they may be part of the number)."""
    redacted = call_pb2.Detection()
    redacted.CopyFrom(detection)
    redacted.matched_text = re.sub(r"\d", "#", redact_text(detection.matched_text))
    return redacted
