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


def tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold().replace(_RIGHT_QUOTE, "'")
    return _TOKEN.findall(folded)


def token_starts(text: str) -> list[int]:
    """Where in ``text`` each of its tokens starts (empty if folding changed its length)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace(_RIGHT_QUOTE, "'")
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
