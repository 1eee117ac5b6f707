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


def normalize(text: str) -> str:
    return " ".join(tokens(text))


_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """The word's stem, so that "prices", "priced" and "pricing" all read "price"."""
    return str(_STEMMER.stemWord(token))
