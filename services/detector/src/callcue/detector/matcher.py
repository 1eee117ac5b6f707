"""Finds where the keywords of a playbook were said in a run of transcript tokens.

Exact phrases, aliases, their compound spellings ("HubSpot" / "hub spot") and, when asked,
their inflected forms go into one Aho-Corasick automaton over the space-joined tokens, so
a segment costs one pass in C whatever the number of keywords.
Fuzzy, phonetic, pattern and semantic triggers cost per keyword that uses them, so a
playbook pays only for what it asks for.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod

import ahocorasick
import jellyfish
import re2
from rapidfuzz import fuzz, process

from callcue.detector.sentences import SentenceEncoder
from callcue.detector.text import inflections, tokens
from callcue.detector.v1 import detector_service_pb2 as pb

DEFAULT_SEMANTIC_THRESHOLD = 0.6
# A single word this long may be heard split in two ("salesforce" as "sales force").
_MIN_SPLIT_WORD = 6
_MIN_SPLIT_PART = 2
# Fuzzy and phonetic matching compare names, not short words: "Gong" must not match "going".
_MIN_FUZZY_CHARS = 5
_MAX_VARIANTS = 100
# Tokens either side of a match searched for the keyword's "do not trigger when" phrases.
_EXCLUDE_BEFORE, _EXCLUDE_AFTER = 6, 3


def compile_pattern(pattern: str) -> re2._Regexp:
    """RE2 runs in time linear in the text: no pattern can hang the service."""
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's error, not the server's log
    return re2.compile(pattern, options)


@dataclass(frozen=True)
class Match:
    keyword: pb.Keyword
    start: int  # first token of the match in the stream
    end: int  # one past its last token
    phrase: str  # the trigger that matched: a phrase, alias, pattern or example
    score: float  # 1 for an exact match


@dataclass(frozen=True)
class _Entry:
    keyword: int
    phrase: str
    length: int  # tokens


class KeywordMatcher:
    """An immutable, compiled playbook: swap in a new one when the playbook changes."""

    def __init__(
        self, keywords: Iterable[pb.Keyword], sentences: SentenceEncoder | None = None
    ) -> None:
        self.keywords = list(keywords)
        self._sentences = sentences
        self._exact = ahocorasick.Automaton()
        self._fuzzy: list[tuple[str, _Entry, float]] = []
        self._phonetic: dict[str, list[_Entry]] = defaultdict(list)
        self._patterns: list[tuple[re2._Regexp, _Entry]] = []
        self._examples: list[tuple[int, str, float]] = []
        self._excluded: dict[int, list[tuple[str, ...]]] = {}
        self.longest = 1
        for index, keyword in enumerate(self.keywords):
            self._compile(index, keyword)
        self._has_exact = len(self._exact) > 0
        if self._has_exact:
            self._exact.make_automaton()
        self._example_matrix = (
            sentences.encode([text for _, text, _ in self._examples])
            if sentences is not None and self._examples
            else None
        )

    def __len__(self) -> int:
        return len(self.keywords)

    @property
    def uses_sentences(self) -> bool:
        return self._example_matrix is not None

    def _compile(self, index: int, keyword: pb.Keyword) -> None:
        phrases = [(phrase, tokens(phrase)) for phrase in (keyword.phrase, *keyword.aliases)]
        phrases = [(phrase, words) for phrase, words in phrases if words]
        # Spellings as written first, so a match names the alias it came from, not
        # another phrase's split or joined spelling that happens to read the same.
        for phrase, words in phrases:
            _add(self._exact, words, _Entry(index, phrase, len(words)))
        for phrase, words in phrases:
            self.longest = max(self.longest, len(words) + 1)
            for variant in _spellings(words):
                _add(self._exact, variant, _Entry(index, phrase, len(variant)))
            if keyword.inflections:
                for variant in _inflected(words):
                    _add(self._exact, variant, _Entry(index, phrase, len(variant)))
            compact = "".join(words)
            if len(compact) >= _MIN_FUZZY_CHARS:
                if keyword.fuzzy_threshold > 0:
                    self._fuzzy.append(
                        (compact, _Entry(index, phrase, len(words)), keyword.fuzzy_threshold)
                    )
                if keyword.phonetic:
                    self._phonetic[jellyfish.metaphone(compact)].append(
                        _Entry(index, phrase, len(words))
                    )
        for pattern in keyword.patterns:
            self._patterns.append((compile_pattern(pattern), _Entry(index, pattern, 0)))
        threshold = keyword.semantic_threshold or DEFAULT_SEMANTIC_THRESHOLD
        self._examples += [(index, example, threshold) for example in keyword.examples]
        excluded = [tuple(tokens(phrase)) for phrase in keyword.conditions.exclude_phrases]
        if excluded:
            self._excluded[index] = [phrase for phrase in excluded if phrase]
            self.longest = max(self.longest, _EXCLUDE_BEFORE + 1)

    def find(self, stream: Sequence[str], first_fresh: int = 0) -> list[Match]:
        """Every match that ends at or after ``first_fresh`` (the tokens before it were
        searched with the previous segment), in order of where it starts."""
        found: list[tuple[int, int, _Entry, float]] = []
        text = " " + " ".join(stream) + " "
        if self._has_exact:
            found += _automaton_matches(self._exact, text, stream)
        if self._fuzzy or self._phonetic:
            found += self._sound_matches(stream)
        starts = _token_starts(stream) if self._patterns else []
        for pattern, entry in self._patterns:
            for hit in pattern.finditer(text):
                first = _token_at(starts, hit.start())
                last = _token_at(starts, max(hit.start(), hit.end() - 1))
                found.append((first, last + 1, entry, 1.0))
        if not found:
            return []  # most segments: nothing more to do
        # Where matches of one keyword overlap, the best one stands: an exact "sales force"
        # over a fuzzy "use sales force".
        kept: dict[int, list[tuple[int, int, _Entry, float]]] = defaultdict(list)
        for hit in sorted(found, key=lambda hit: (-hit[3], hit[0], -hit[1])):
            start, end, entry, _ = hit
            if end <= first_fresh or any(
                start < other_end and other_start < end
                for other_start, other_end, _, _ in kept[entry.keyword]
            ):
                continue
            if not self._is_excluded(entry.keyword, stream, start, end):
                kept[entry.keyword].append(hit)
        return [
            Match(self.keywords[entry.keyword], start, end, entry.phrase, score)
            for start, end, entry, score in sorted(
                (hit for hits in kept.values() for hit in hits), key=lambda hit: (hit[0], -hit[1])
            )
        ]

    def find_meaning(self, sentence: str) -> list[Match]:
        """Keywords whose examples mean what ``sentence`` says (whole-sentence matches)."""
        if self._sentences is None or self._example_matrix is None or not sentence.strip():
            return []
        similarities = (
            self._example_matrix @ self._sentences.encode([sentence], recent_only=True)[0]
        )
        best: dict[int, tuple[float, str]] = {}
        for (index, example, threshold), similarity in zip(
            self._examples, similarities.tolist(), strict=True
        ):
            if similarity >= threshold and similarity > best.get(index, (0.0, ""))[0]:
                best[index] = (similarity, example)
        count = len(tokens(sentence))
        return [
            Match(self.keywords[index], 0, count, example, round(score, 3))
            for index, (score, example) in sorted(best.items())
            if not self._is_excluded(index, tokens(sentence), 0, count)
        ]

    def _sound_matches(self, stream: Sequence[str]) -> list[tuple[int, int, _Entry, float]]:
        found = []
        choices = [compact for compact, _, _ in self._fuzzy]
        for start in range(len(stream)):
            heard = ""
            for end in range(start + 1, min(start + 4, len(stream)) + 1):
                heard += stream[end - 1]
                if len(heard) < _MIN_FUZZY_CHARS:
                    continue
                for entry in self._phonetic.get(jellyfish.metaphone(heard), ()):
                    found.append((start, end, entry, 0.9))
                if choices:
                    for _, score, position in process.extract(
                        heard, choices, scorer=fuzz.ratio, score_cutoff=50, limit=None
                    ):
                        _, entry, threshold = self._fuzzy[position]
                        # At most one word more than the phrase: "use sales force" is
                        # close to "salesforce" by letters, but "use" is not part of it.
                        if score >= threshold * 100 and end - start <= entry.length + 1:
                            found.append((start, end, entry, round(score / 100, 3)))
        return found

    def _is_excluded(self, keyword: int, stream: Sequence[str], start: int, end: int) -> bool:
        excluded = self._excluded.get(keyword)
        if not excluded:
            return False
        around = tuple(stream[max(0, start - _EXCLUDE_BEFORE) : end + _EXCLUDE_AFTER])
        return any(
            around[i : i + len(phrase)] == phrase
            for phrase in excluded
            for i in range(len(around) - len(phrase) + 1)
        )


def _inflected(words: Sequence[str]) -> list[tuple[str, ...]]:
    """Every combination of the words' forms; past a hundred, only the last word varies."""
    forms = [sorted(inflections(word)) for word in words]
    if prod(len(choices) for choices in forms) > _MAX_VARIANTS:
        forms = [[word] for word in words[:-1]] + [forms[-1]]
    return list(itertools.product(*forms))


def _spellings(words: Sequence[str]) -> set[tuple[str, ...]]:
    """The phrase as written, run together, and a long single word split in two."""
    variants = {tuple(words)}
    if len(words) > 1:
        variants.add(("".join(words),))
    elif len(words[0]) >= _MIN_SPLIT_WORD:
        word = words[0]
        for cut in range(_MIN_SPLIT_PART, len(word) - _MIN_SPLIT_PART + 1):
            variants.add((word[:cut], word[cut:]))
    return variants


def _add(automaton: ahocorasick.Automaton, words: Sequence[str], entry: _Entry) -> None:
    key = " " + " ".join(words) + " "
    value: tuple[int, list[_Entry]] | None = automaton.get(key, None)
    if value is None:
        automaton.add_word(key, (len(key), [entry]))
    elif all(existing.keyword != entry.keyword for existing in value[1]):
        value[1].append(entry)


def _token_starts(stream: Sequence[str]) -> list[int]:
    """Where each token starts in ``" " + " ".join(stream) + " "``."""
    starts, position = [], 1
    for token in stream:
        starts.append(position)
        position += len(token) + 1
    return starts


def _token_at(starts: list[int], offset: int) -> int:
    return max(0, bisect_right(starts, offset) - 1)


def _automaton_matches(
    automaton: ahocorasick.Automaton, text: str, stream: Sequence[str]
) -> list[tuple[int, int, _Entry, float]]:
    """Matches of the automaton in ``text`` (the space-joined ``stream``) as token spans.
    Most segments match nothing, so token positions are worked out only on a hit."""
    found = []
    index_of: dict[int, int] | None = None
    for end_offset, (key_length, entries) in automaton.iter(text):
        if index_of is None:
            index_of = {offset: index for index, offset in enumerate(_token_starts(stream))}
        # The key is " w1 ... wn ": its first word starts one past the leading space.
        start = index_of[end_offset - key_length + 2]
        for entry in entries:
            found.append((start, start + entry.length, entry, 1.0))
    return found
