"""The personal data of a transcript that is not a run of digits, as Whisper writes it and as
people say it: email addresses ("jane.doe@example.com", "jane dot doe at example dot com"),
dates of birth (a date said where the words speak of birth, or a full date whose year
is long past: tiny.en often mishears "date of birth" itself) and street addresses (a house
number, a few words, a street type: "42 Wallaby Way", "one two three Main Street").

Each finder matches over the call's words, lowercased and stripped of punctuation, and
answers with the token ranges it found, for ``redaction`` to mask.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

# What a token may carry around its word.
PUNCTUATION = ".,;:!?\"'()"

_TLD = r"(?:com|org|net|edu|gov|io|co|us|uk|ca|de|fr|info|biz|me)"
_WORDS_DOT = r"(?:\s*(?:\.|\bdot\b)\s*)"
# Words said around an address that are not part of it.
_NOT_LOCAL = (
    r"(?!(?:me|is|it|its|to|email|mail|address|send|my|the|a|or|and|at|was|be|us|him|her|"
    r"them|you|reach|contact|write)\b)"
)
# "at" is often heard as "and": taken for "at" when a written domain follows ("and gmail.com").
EMAIL = re.compile(
    # local part: words joined by dots, underscores or dashes (written or said), or a
    # first and last name said one after the other
    rf"\b{_NOT_LOCAL}[a-z0-9][\w+-]*(?:\s+{_NOT_LOCAL}[a-z0-9][\w+-]*)?"
    r"(?:(?:\.|\s+(?:dot|underscore|dash)\s+)[\w+-]+)*"
    r"\s*(?:@|\bat\b|\band\b(?=\s*[a-z0-9][\w-]*\.[a-z]))\s*"
    # domain: words joined by dots (written or said), then a top-level domain
    rf"[a-z0-9][\w-]*(?:{_WORDS_DOT}[a-z0-9][\w-]*)*{_WORDS_DOT}{_TLD}\b"
)

_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_ORDINAL = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"thirtieth)"
)
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_ORDINAL}|(?:twenty|thirty) {_ORDINAL})"
_UNIT = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_TEENS_WORD = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
_TENS_WORD = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_TWO_DIGITS = rf"(?:{_TENS_WORD}(?: {_UNIT})?|{_TEENS_WORD}|oh {_UNIT})"
_YEAR = (
    rf"(?:\d{{4}}|'?\d{{2}}|nineteen {_TWO_DIGITS}|"
    rf"two thousand(?: and)?(?: {_UNIT}| {_TEENS_WORD}| {_TWO_DIGITS})?|twenty {_TWO_DIGITS})"
)
DATE = re.compile(
    rf"\b(?:{_MONTH} (?:the )?{_DAY}(?: (?:and |of )?{_YEAR})?|"
    rf"(?:the )?{_DAY} (?:of )?{_MONTH}(?: (?:and |of )?{_YEAR})?|"
    rf"\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}}))\b"
)
BIRTH = re.compile(r"\b(?:born|birth|birthday|dob|d\.o\.b|birthdate)\b")

_NUMBER_WORD = (
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand)"
)
_HOUSE = rf"(?:\d[\d,]*[a-z]?(?: \d+)*|{_NUMBER_WORD}(?: {_NUMBER_WORD})*)"
_SUFFIX = (
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"terrace|circle|parkway|pkwy|highway|hwy|square|trail|crescent)"
)
# Words that do not name a street: "two of the ways", "3 more days in the road".
_NOT_A_NAME = (
    r"(?:the|a|an|of|to|in|on|at|for|and|or|my|your|our|their|his|her|its|that|this|these|"
    r"those|is|are|was|were|be|it|i|you|we|they|he|she|more|other|times|years|days|minutes|"
    r"weeks|months|hours|dollars|percent|by|with|from|about|what|which|all|any|some)"
)
_NAME_WORD = rf"(?!{_NOT_A_NAME}\b)[a-z][a-z'-]*"
ADDRESS = re.compile(
    rf"\b{_HOUSE} (?:(?:north|south|east|west|n|s|e|w) )?{_NAME_WORD}(?: {_NAME_WORD}){{0,2}} "
    rf"{_SUFFIX}\b(?: (?:apartment|apt|suite|unit|number) (?:\d+[a-z]?|{_NUMBER_WORD}|[a-z]))?"
)


def _normalised(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The tokens lowercased, stripped and joined by spaces; and where each one starts."""
    starts, parts, position = [], [], 0
    for token in tokens:
        bare = token.lower().strip(PUNCTUATION) or "_"
        starts.append(position)
        parts.append(bare)
        position += len(bare) + 1
    return " ".join(parts), starts


def _ranges(tokens: Sequence[str], pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    text, starts = _normalised(tokens)
    found = []
    for match in pattern.finditer(text):
        first = max(i for i, start in enumerate(starts) if start <= match.start())
        last = max(i for i, start in enumerate(starts) if start < match.end())
        found.append((first, last + 1))
    return found


# Where the words speak of email, a written domain is taken for an address even without its
# "@" (tiny.en writes "jane at example dot com" as "www.janeatexample.com", say).
_EMAIL_CONTEXT = re.compile(r"\b(?:e-?mail|mail)\b")
DOMAIN = re.compile(rf"\b[a-z0-9][\w-]*(?:\.[\w-]+)*\.{_TLD}\b")


def emails(tokens: Sequence[str], said: str = "") -> list[tuple[int, int]]:
    found = _ranges(tokens, EMAIL)
    if _EMAIL_CONTEXT.search(said.lower()):
        taken = {i for first, last in found for i in range(first, last)}
        found += [
            (first, last)
            for first, last in _ranges(tokens, DOMAIN)
            if not taken & set(range(first, last))
        ]
    return sorted(found)


# A full date ten years back or more is taken for a birth date even with no word of a birth:
# calls seldom give the year of anything else that old to the day.
_OLD_YEAR = re.compile(r"\b(?:19\d\d|nineteen [a-z]+|'\d\d)\b")
_BIRTH_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_YEAR_DIGITS = re.compile(r"\b(20[0-9][0-9])\b")
YEARS_BACK = 10


def dates_of_birth(
    tokens: Sequence[str], said: str, this_year: int | None = None
) -> list[tuple[int, int]]:
    """Dates, where ``said`` (the segments around them) speaks of a birth; and, anywhere,
    dates with a day, a month and a year at least ``YEARS_BACK`` years back."""
    found = _ranges(tokens, DATE)
    if BIRTH.search(said.lower()):
        # Where a birth is spoken of, a year on its own is the year of it.
        taken = {i for first, last in found for i in range(first, last)}
        years = [r for r in _ranges(tokens, _BIRTH_YEAR) if not taken & set(range(*r))]
        return sorted(found + years)
    this_year = this_year or datetime.date.today().year
    old = []
    for first, last in found:
        text = " ".join(t.lower().strip(PUNCTUATION) for t in tokens[first:last])
        recent = _YEAR_DIGITS.search(text)
        if (_OLD_YEAR.search(text) and not recent) or (
            recent and int(recent.group(1)) <= this_year - YEARS_BACK
        ):
            if re.search(r"\d|" + _DAY, text) and re.search(_MONTH + r"|/|-", text):
                old.append((first, last))
    return old


def street_addresses(tokens: Sequence[str]) -> list[tuple[int, int]]:
    return _ranges(tokens, ADDRESS)
