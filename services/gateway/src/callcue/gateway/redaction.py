"""Personal data out of transcripts before they are published or stored.

Whisper writes a number read out on a call as digits ("4111 1111 1111 1111",
"4111-1111-..."), as words ("four one one one ...", "forty one eleven", "double five") or a
mix, often split into groups. Tokens that carry digits are joined into runs; a run of 13 to
19 digits that passes the Luhn check is a payment card, masked to its last four
(``[CARD ****1111]``); nine digits written as ddd-dd-dddd, or said in a segment that speaks
of a social security number, are an SSN (``[SSN ***-**-6789]``); digits said where the words
speak of an account or routing number are a bank account (``[ACCOUNT ****6789]``); ten
digits shaped like a North American number (or seven where the words speak of a phone) are
a phone number (``[PHONE ****4567]``). Other runs are ``[NUMBER]`` when long enough to be
data read out (see ``_other_number``). Email addresses, dates of birth and street addresses
are found by ``pii_patterns``. What each kind becomes (masked, dropped, or kept) is the
tenant's ``Policy``; cards and social security numbers are never kept.

The detector gets the original text in memory, so keywords still fire; what the caller, the
notifier, Redis and PostgreSQL get is the redacted copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from callcue.call.v1 import call_pb2
from callcue.gateway import pii_patterns
from callcue.gateway.redaction_policy import Action, Kind, Policy

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
# "S N", "S-N" and "S S N" are how tiny.en often writes "S S N".
_SSN_WORDS = r"social|s\.?s\.?n|s-n|sn|s s n"
_SSN_CONTEXT = re.compile(rf"\b({_SSN_WORDS})\b", re.I)
# Words that say payment or identity data is being read out: then any run of four digits
# or more is masked, whatever it looks like, since a misheard digit breaks the Luhn check.
_CONTEXT = re.compile(
    r"\b(card|credit|debit|visa|master ?card|amex|american express|discover|cvv|cvc|"
    rf"expir\w*|security|{_SSN_WORDS})\b",
    re.I,
)
CONTEXT_MIN_DIGITS = 4
# A segment holding this many digits is read as one where payment or identity data is read
# out (no date, amount or count needs so many).
DENSE_DIGITS = 11
# No phone number is this long: a run of this many digits is masked whatever the words
# around it (a card number with a misheard digit, or its context word misheard).
ALWAYS_MIN_DIGITS = 13
# Nine digits or more read out in small groups (one to four digits a word, three words or
# more) are an SSN, an account or a routing number whose context words were misheard.
READ_OUT_MIN_DIGITS = 9
READ_OUT_GROUP_DIGITS = 4
# Seven digits or more said one at a time are read out whatever they are, with a digit or
# two of an SSN or a card lost ("F.M.M. is 3-1-5-5-1-3-8-1-M": eight of nine); nobody says an
# amount, a date or a count that way.
ONE_BY_ONE_MIN_DIGITS = 7
_BANK_CONTEXT = re.compile(r"\b(account|acct|routing|iban|checking|savings)\b", re.I)
_PHONE_CONTEXT = re.compile(r"\b(phone|cell|mobile|call me|reach me|reached me|extension)\b", re.I)
BANK_MIN_DIGITS = 6
BANK_MAX_DIGITS = 17
_SSN_WRITTEN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PUNCTUATION = pii_patterns.PUNCTUATION


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


# Whisper writes quantities and money with thousands separators ("41,841"), numbers read out
# digit by digit without them.
_QUANTITY = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
_AMOUNT_WORDS = {
    "dollars", "dollar", "cents", "cent", "bucks", "thousand", "hundred", "million", "billion",
    "percent", "%", "euros", "pounds",
}  # fmt: skip


def _word_digits(word: str) -> str | None:
    """The digits one token says, or None when it says none."""
    bare = word.strip(_PUNCTUATION).lower()
    if not bare:
        return None
    compact = bare.replace("-", "").replace(".", "").replace(",", "")
    if compact.isdigit():
        if _QUANTITY.match(bare) and len(compact) < ALWAYS_MIN_DIGITS:
            return None
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
    return _dashed_digits(bare)


def _dashed_digits(bare: str) -> str | None:
    """The digits of digits read out one by one that tiny.en wrote joined by dashes, with
    a word it made of a misheard one among them ("421-4-8-2-6-2-N", the N of an "S-S-N"
    said after; "7-1-nubble-7", a "double")."""
    pieces = bare.split("-")
    digits = _digit_pieces(bare)
    others = len(pieces) - len(digits)
    if len(digits) < 2 or len(digits) <= 2 * others:
        return None
    if not all(piece.isdigit() or piece.isalpha() for piece in pieces):
        return None
    return "".join(digits)


def _digit_pieces(bare: str) -> list[str]:
    return [piece for piece in bare.split("-") if piece.isdigit()]


@dataclass(frozen=True)
class Span:
    """Tokens ``start`` to ``end`` (exclusive) are one item of ``kind``, shown as ``mask``."""

    start: int
    end: int
    mask: str
    kind: Kind = Kind.NUMBER


def _said_digits(tokens: Sequence[str], position: int) -> str | None:
    """The digits token ``position`` says, unless it is an amount ("41 dollars", "six
    thousand")."""
    said = _word_digits(tokens[position])
    if said is None or position + 1 >= len(tokens):
        return said
    if tokens[position + 1].strip(_PUNCTUATION).lower() in _AMOUNT_WORDS:
        return None
    return said


def _run(tokens: Sequence[str], index: int) -> list[tuple[int, str]]:
    """The digit-bearing tokens from ``index`` on, with the digits each adds, until a word
    that is neither a number nor said between the groups of one."""
    run: list[tuple[int, str]] = []
    repeat = 1
    for position in range(index, len(tokens)):
        bare = tokens[position].strip(_PUNCTUATION).lower()
        said = _said_digits(tokens, position)
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


def find(
    tokens: Sequence[str],
    *,
    ssn_context: bool = False,
    context: bool = False,
    bank_context: bool = False,
    phone_context: bool = False,
    said: str = "",
    **_: int,
) -> list[Span]:
    """The personal data among ``tokens`` (words as written). Within a run of digits (a
    card number and its expiry date, say) the longest stretch that is a card number is
    found; a run that is no card or SSN may be a bank account or a phone number. Any other
    run of 13 digits or more is masked as ``[NUMBER]``, and with ``context`` (the words speak
    of a card or an SSN) any of four or more. Then emails, dates of birth (where ``said``
    speaks of a birth) and street addresses, where no number was found."""
    # Many digits in a few words, in pieces a misheard word broke apart: a number read out,
    # whatever tiny.en made of the words around it.
    dense = sum(len(_said_digits(tokens, i) or "") for i in range(len(tokens))) >= DENSE_DIGITS
    spans = _numbers(tokens, ssn_context, context or dense, bank_context, phone_context)
    return _with_wordy(spans, tokens, said)


def _with_wordy(spans: list[Span], tokens: Sequence[str], said: str) -> list[Span]:
    """``spans`` (numbers) and the emails, dates of birth and addresses among ``tokens``,
    in order; where one holds a number (a house number read as a phone, say), the longer
    wins, unless the number is a card or an SSN."""
    taken = {i for span in spans for i in range(span.start, span.end)}
    found = [
        *(Span(a, b, "[EMAIL]", Kind.EMAIL) for a, b in pii_patterns.emails(tokens, said)),
        *(
            Span(a, b, "[DATE OF BIRTH]", Kind.DATE_OF_BIRTH)
            for a, b in pii_patterns.dates_of_birth(tokens, said)
        ),
        *(
            Span(a, b, "[ADDRESS]", Kind.STREET_ADDRESS)
            for a, b in pii_patterns.street_addresses(tokens)
        ),
    ]
    for span in sorted(found, key=lambda s: (s.start, -s.end)):
        covered = set(range(span.start, span.end))
        if covered & taken:
            inside = [s for s in spans if s.start >= span.start and s.end <= span.end]
            if not inside or any(s.kind in (Kind.CARD, Kind.SSN) for s in inside):
                continue
            spans = [s for s in spans if s not in inside]
        spans.append(span)
        taken |= covered
    return sorted(spans, key=lambda s: s.start)


def _numbers(
    tokens: Sequence[str], ssn_context: bool, context: bool, bank_context: bool, phone_context: bool
) -> list[Span]:
    spans: list[Span] = []
    index = 0
    while index < len(tokens):
        run = _run(tokens, index)
        if not run:
            index += 1
            continue
        found = _best(tokens, run, ssn_context)
        if found is None:
            digits = "".join(d for _, d in run)
            groups = [size for position, said in run for size in _groups(tokens[position], said)]
            other = _other_number(digits, groups, context, bank_context, phone_context)
            if other is not None:
                spans.append(Span(run[0][0], run[-1][0] + 1, *other))
            index = run[-1][0] + 1
            continue
        digits_before = sum(len(d) for position, d in run if position < found.start)
        if found.kind is Kind.CARD and digits_before:
            # A card number is read out from its first digit: a Luhn-valid stretch inside a
            # longer run is more likely an order number, misheard; hidden all the same.
            spans.append(Span(run[0][0], run[-1][0] + 1, "[NUMBER]"))
            index = run[-1][0] + 1
            continue
        if context and digits_before >= CONTEXT_MIN_DIGITS:
            spans.append(Span(run[0][0], found.start, "[NUMBER]"))
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
                best = Span(run[first][0], run[last][0] + 1, *mask)
                best_length = len(digits)
        if best is not None:
            return best  # the earliest start: what follows is searched again after it
    return best


def _nanp(digits: str) -> bool:
    """Ten digits shaped like a North American number: an area code that starts 2-9 (the
    exchange is not checked: people read out made-up 555-123-... numbers too)."""
    return len(digits) == 10 and digits[0] in "23456789"


def _groups(token: str, said: str) -> list[int]:
    """How many digits each group of a digit-bearing token holds: "22-4839" two groups,
    "five" one."""
    return [len(piece) for piece in _digit_pieces(token.strip(_PUNCTUATION))] or [len(said)]


def _other_number(
    digits: str, groups: list[int], context: bool, bank_context: bool, phone_context: bool
) -> tuple[str, Kind] | None:
    """``groups``: how many digits each word of the run said."""
    count = len(digits)
    read_out = len(groups) >= 3 and max(groups) <= READ_OUT_GROUP_DIGITS
    one_by_one = len(groups) >= ONE_BY_ONE_MIN_DIGITS and max(groups) == 1
    if bank_context and BANK_MIN_DIGITS <= count <= BANK_MAX_DIGITS:
        return f"[ACCOUNT ****{digits[-4:]}]", Kind.BANK_ACCOUNT
    if (
        _nanp(digits)
        or (count == 11 and digits[0] == "1" and _nanp(digits[1:]))
        # said of a phone, seven digits (a local number) up to twelve (a digit heard twice,
        # or one lost: tiny.en)
        or (phone_context and 7 <= count <= 12)
    ):
        return f"[PHONE ****{digits[-4:]}]", Kind.PHONE_NUMBER
    if (
        count >= ALWAYS_MIN_DIGITS
        or (context and count >= CONTEXT_MIN_DIGITS)
        or (read_out and count >= READ_OUT_MIN_DIGITS)
        or one_by_one
    ):
        return "[NUMBER]", Kind.NUMBER
    return None


def card_length(digits: str) -> bool:
    """Whether a card of the network these digits start with has this many (Visa 13, 16 or
    19; Mastercard 16; Amex 15; Discover, JCB, UnionPay 16 to 19; Diners 14)."""
    length = len(digits)
    if digits.startswith("4"):
        return length in (13, 16, 19)
    if digits[:2] in ("34", "37"):
        return length == 15
    if digits[:2] in ("30", "36", "38"):
        return length == 14
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return length == 16
    if digits[:1] == "6" or digits[:2] == "35":
        return 16 <= length <= 19
    return False


def _mask(digits: str, tokens: Sequence[str], ssn_context: bool) -> tuple[str, Kind] | None:
    if card_length(digits) and luhn_valid(digits):
        return f"[CARD ****{digits[-4:]}]", Kind.CARD
    written = len(tokens) == 1 and _SSN_WRITTEN.match(tokens[0].strip(_PUNCTUATION))
    if len(digits) == 9 and (written or ssn_context):
        return f"[SSN ***-**-{digits[-4:]}]", Kind.SSN
    return None


def redact_text(text: str, policy: Policy | None = None) -> str:
    segment = call_pb2.TranscriptSegment(text=text)
    return redact_group([segment], find, policy)[0].text


Finder = Callable[..., list[Span]]


def numbers(
    tokens: Sequence[str], *, min_digits: int = 6, said: str = "", **_: object
) -> list[Span]:
    """Every run of at least ``min_digits`` digits, whatever it is, and the emails, dates of
    birth and addresses ``find`` would find: for partial transcripts, where a card number
    may still be half said."""
    spans, index = [], 0
    while index < len(tokens):
        run = _run(tokens, index)
        if run and sum(len(digits) for _, digits in run) >= min_digits:
            spans.append(Span(run[0][0], run[-1][0] + 1, "[NUMBER]"))
        index = run[-1][0] + 1 if run else index + 1
    return _with_wordy(spans, tokens, said)


def redact_group(
    segments: Sequence[call_pb2.TranscriptSegment],
    finder: Finder,
    policy: Policy | None = None,
    **options: int,
) -> list[call_pb2.TranscriptSegment]:
    """Copies of consecutive segments of one channel with what ``finder`` finds masked or
    dropped as ``policy`` says (every kind masked without one), an item said across two of
    them included: its mask goes where it began, in the text and in the words (one word
    spanning the words it was said in)."""
    policy = policy or Policy()
    said = " ".join(s.text for s in segments)
    flags = {
        "ssn_context": bool(_SSN_CONTEXT.search(said)),
        "context": bool(_CONTEXT.search(said)),
        "bank_context": bool(_BANK_CONTEXT.search(said)),
        "phone_context": bool(_PHONE_CONTEXT.search(said)),
    }
    texts = [segment.text.split() for segment in segments]
    words = [list(segment.words) for segment in segments]
    text_spans = _by_policy(
        finder([t for part in texts for t in part], said=said, **flags, **options), policy
    )
    word_spans = _by_policy(
        finder([w.text for part in words for w in part], said=said, **flags, **options), policy
    )
    if not text_spans and not word_spans:
        return list(segments)
    new_texts = _apply(texts, text_spans, lambda first, last, span: span.mask + _trailing(last))
    new_words = _apply(words, word_spans, _masked_word)
    out = []
    for segment, text, kept in zip(segments, new_texts, new_words, strict=True):
        redacted = call_pb2.TranscriptSegment()
        redacted.CopyFrom(segment)
        redacted.text = _joined(text)
        del redacted.words[:]
        # A dropped item leaves no word behind (its punctuation is in the text).
        redacted.words.extend(w for w in kept if w.text.strip(_PUNCTUATION))
        out.append(redacted)
    return out


def _by_policy(spans: list[Span], policy: Policy) -> list[Span]:
    """The spans the policy redacts, a dropped one with nothing to show."""
    kept = []
    for span in spans:
        action = policy.action(span.kind)
        if action is Action.DROP:
            kept.append(Span(span.start, span.end, "", span.kind))
        elif action is Action.MASK:
            kept.append(span)
    return kept


def _joined(tokens: list[str]) -> str:
    """Tokens as text; where a dropped item left only its punctuation, that goes on the
    word before."""
    out: list[str] = []
    for token in tokens:
        if not token:
            continue
        if out and not token.strip(_PUNCTUATION):
            out[-1] += token
        else:
            out.append(token)
    return " ".join(out)


def _trailing(token: str) -> str:
    return token[len(token.rstrip(_PUNCTUATION)) :]


T = TypeVar("T")


def _apply(
    parts: list[list[T]], spans: list[Span], masked: Callable[[T, T, Span], T]
) -> list[list[T]]:
    """Each part's items with every span's items replaced by one masked item, in the part
    where the span starts, made from the span's first item and its last within that part."""
    owners = [(index, item) for index, part in enumerate(parts) for item in part]
    out: list[list[T]] = [[] for _ in parts]
    position = 0
    for span in spans:
        for owner, item in owners[position : span.start]:
            out[owner].append(item)
        first_owner, first = owners[span.start]
        last = [item for owner, item in owners[span.start : span.end] if owner == first_owner][-1]
        out[first_owner].append(masked(first, last, span))
        position = span.end
    for owner, item in owners[position:]:
        out[owner].append(item)
    return out


def _masked_word(first: call_pb2.Word, last: call_pb2.Word, span: Span) -> call_pb2.Word:
    masked = call_pb2.Word(text=span.mask + _trailing(last.text), confidence=last.confidence)
    masked.start_offset.CopyFrom(first.start_offset)
    masked.end_offset.CopyFrom(last.end_offset)
    return masked


def redact_segment(
    segment: call_pb2.TranscriptSegment, policy: Policy | None = None
) -> call_pb2.TranscriptSegment:
    """A copy of ``segment`` with its personal data redacted (``segment`` itself when it
    holds none)."""
    return redact_group([segment], find, policy)[0]


def _open_number(segment: call_pb2.TranscriptSegment) -> bool:
    """Whether the segment ends inside a run of digits that the next one may continue."""
    tokens = segment.text.split()
    start = len(tokens)
    while start and (
        _word_digits(tokens[start - 1]) is not None
        or tokens[start - 1].strip(_PUNCTUATION).lower() in (*_REPEAT, *_JOINERS)
    ):
        start -= 1
    if start == len(tokens):
        return False
    tail = tokens[start:]
    if tail[-1].endswith((".", "?", "!")) and any(s.end == len(tail) for s in find(tail)):
        return False  # a whole card or social security number, and the sentence ends
    digits = sum(len(d) for _, d in _run(tokens, start))
    return 0 < digits < 19


class Redactor:
    """One call's masking. A final that ends inside what may be a number read out in
    groups waits for its channel's next final, so a number split across segments is
    masked whole; partials, which may hold half a number, have every long run of digits
    masked (every run at all while a final of their channel waits)."""

    MAX_HELD = 4
    # Nobody pauses this long inside a number they read out: a final still waiting when the
    # call has gone on this far past it is let go.
    PAUSE_SECONDS = 3.0

    def __init__(self, policy: Policy | None = None) -> None:
        self._policy = policy or Policy()
        self._held: dict[int, list[call_pb2.TranscriptSegment]] = {}
        self._touched: set[str] = set()

    def final(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.TranscriptSegment]:
        """What may be published now: waiting finals the call has moved past, then this
        one (with any of its channel's that waited for it), unless it waits in turn."""
        released = self._past(segment, keep=segment.channel)
        group = [*self._held.pop(segment.channel, []), segment]
        if _open_number(segment) and len(group) < self.MAX_HELD:
            self._held[segment.channel] = group
            self._touched.add(segment.segment_id)
            return released
        return released + self._release(group)

    def partial(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.TranscriptSegment]:
        """Waiting finals the call has moved past, then the partial, masked."""
        released = self._past(segment)
        waiting = segment.channel in self._held
        # Said about a card or an SSN, even four digits may be its start.
        least = 1 if waiting else CONTEXT_MIN_DIGITS if _CONTEXT.search(segment.text) else 6
        (shown,) = redact_group([segment], numbers, self._policy, min_digits=least)
        return [*released, shown]

    def _past(
        self, segment: call_pb2.TranscriptSegment, keep: int | None = None
    ) -> list[call_pb2.TranscriptSegment]:
        now = segment.start_offset.ToMilliseconds() / 1000
        released = []
        for channel, group in list(self._held.items()):
            if (
                channel != keep
                and group[-1].end_offset.ToMilliseconds() / 1000 + self.PAUSE_SECONDS < now
            ):
                released += self._release(self._held.pop(channel))
        return released

    def flush(self) -> list[call_pb2.TranscriptSegment]:
        """What still waits, at the end of the call."""
        held, self._held = self._held, {}
        return [segment for group in held.values() for segment in self._release(group)]

    def touched(self, segment_id: str) -> bool:
        """Whether the segment held (or may hold) a masked number."""
        return segment_id in self._touched

    def _release(self, group: list[call_pb2.TranscriptSegment]) -> list[call_pb2.TranscriptSegment]:
        shown = redact_group(group, find, self._policy)
        for before, after in zip(group, shown, strict=True):
            if before is not after:
                self._touched.add(before.segment_id)
        return shown


def redact_detection(
    detection: call_pb2.Detection, policy: Policy | None = None
) -> call_pb2.Detection:
    """A detection fired by words of a redacted segment: what its matched words hold is
    redacted too, and their digits go (they may be part of a number)."""
    redacted = call_pb2.Detection()
    redacted.CopyFrom(detection)
    redacted.matched_text = re.sub(r"\d", "#", redact_text(detection.matched_text, policy))
    return redacted
