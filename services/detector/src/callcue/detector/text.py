"""How transcript text and trigger phrases are cut into comparable tokens."""

from __future__ import annotations

import functools
import re
import unicodedata

import snowballstemmer

# Letters and digits, with apostrophes kept inside words ("don't", "o'brien");
# everything else (punctuation, hyphens, spaces) separates tokens.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_RIGHT_QUOTE = "\u2019"  # typographic apostrophe, as in "don\u2019t"


def _fold(text: str) -> str:
    if text.isascii():  # nearly every transcript: lower() is casefold() there, and cheaper
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold().replace(_RIGHT_QUOTE, "'")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(_fold(text))


def token_starts(text: str) -> list[int]:
    """Where in ``text`` each of its tokens starts (empty if folding changed its length)."""
    folded = _fold(text)
    if len(folded) != len(text):
        return []
    return [match.start() for match in _TOKEN.finditer(folded)]


def normalize(text: str) -> str:
    return " ".join(tokens(text))


_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """The word's stem, so that "prices", "priced" and "pricing" all read "price"."""
    return str(_STEMMER.stemWord(token))


_SUFFIXES = ("s", "es", "d", "ed", "ing")


def inflections(word: str) -> set[str]:
    """The word's forms that share its stem: "price" gives "prices", "priced", "pricing".
    Candidates come from English suffix rules; the stemmer decides which are the word."""
    root = stem(word)
    bases = {word, root}
    candidates = set(bases)
    for base in bases:
        candidates.update(base + suffix for suffix in _SUFFIXES)
        if base.endswith("e"):
            candidates.update(base[:-1] + suffix for suffix in ("ing", "ed"))
        if base.endswith("y"):
            candidates.update(base[:-1] + suffix for suffix in ("ies", "ied"))
        if len(base) > 2 and base[-1] not in "aeiouwxy" and base[-2] in "aeiou":
            candidates.update(base + base[-1] + suffix for suffix in ("ed", "ing"))
    return {form for form in candidates if stem(form) == root and _TOKEN.fullmatch(form)}
