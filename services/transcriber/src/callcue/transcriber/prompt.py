"""The text Whisper reads as what came before an utterance: the call's hotwords, then the
last words said.

Whisper continues its prompt's style. A bare list of phrases ("Harper Valley, debit card")
made it continue the list ("and transfer." for a noise) and drop punctuation and capitals
for the rest of the call; as a sentence of its own ("Glossary: Harper Valley, debit card.")
the names still come out right and the style does not carry over (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def whisper_prompt(hotwords: Sequence[str], said: Iterable[str]) -> str:
    listed = ", ".join(phrase.strip() for phrase in hotwords if phrase.strip())
    glossary = f"Glossary: {listed}." if listed else ""
    return " ".join([glossary, *said]).strip()
