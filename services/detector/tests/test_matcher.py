from __future__ import annotations

import pytest

from callcue.call.v1 import call_pb2
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.sentences import MiniLM
from callcue.detector.text import tokens
from callcue.detector.v1 import detector_service_pb2 as pb


def keyword(phrase: str, *aliases: str, **options: object) -> pb.Keyword:
    return pb.Keyword(
        keyword_id=phrase or str(options.get("examples")),
        phrase=phrase,
        aliases=aliases,
        talking_point=call_pb2.TalkingPoint(title=f"About {phrase}"),
        **options,  # type: ignore[arg-type]
    )


def heard(matcher: KeywordMatcher, text: str) -> list[str]:
    """The matched trigger and the words it matched, for each match."""
    stream = tokens(text)
    return [
        f"{match.phrase}={' '.join(stream[match.start : match.end])}"
        for match in matcher.find(stream)
    ]


def test_case_punctuation_and_word_boundaries() -> None:
    matcher = KeywordMatcher([keyword("Salesforce"), keyword("price")])
    assert heard(matcher, "We use SALESFORCE, honestly.") == ["Salesforce=salesforce"]
    assert heard(matcher, "The priceless view.") == []
    assert heard(matcher, "What's the price?") == ["price=price"]


def test_phrases_and_aliases() -> None:
    matcher = KeywordMatcher([keyword("too expensive", "over our budget")])
    assert heard(matcher, "that is too expensive") == ["too expensive=too expensive"]
    assert heard(matcher, "it's over our budget.") == ["over our budget=over our budget"]
    assert heard(matcher, "too much, expensive") == []


def test_names_heard_as_two_words_or_one() -> None:
    matcher = KeywordMatcher([keyword("Salesforce"), keyword("hub spot")])
    assert heard(matcher, "we moved off sales force") == ["Salesforce=sales force"]
    assert heard(matcher, "we use HubSpot now") == ["hub spot=hubspot"]
    # Splits need real parts: no single letters.
    assert heard(matcher, "s alesforce") == []


def test_inflections_only_when_asked() -> None:
    matcher = KeywordMatcher([keyword("price", inflections=True), keyword("contract")])
    for text in ("the prices went up", "how is it priced", "your pricing page"):
        assert len(heard(matcher, text)) == 1, text
    assert heard(matcher, "send the contracts") == []
    # Stems are shorter than the words: positions still come out right.
    assert heard(matcher, "transferred everything, then the pricing changed") == ["price=pricing"]


def test_fuzzy_matches_misspelled_names_above_the_threshold() -> None:
    matcher = KeywordMatcher(
        [keyword("Pipedrive", fuzzy_threshold=0.85), keyword("Gong", fuzzy_threshold=0.5)]
    )
    assert heard(matcher, "we tried pipe drives last year") == ["Pipedrive=pipe drives"]
    assert heard(matcher, "we tried pipedream") == []
    # Short names never match fuzzily: "going" is not "Gong", whatever the threshold.
    assert heard(matcher, "we are going") == []
    assert heard(matcher, "we use gong") == ["Gong=gong"]


def test_phonetic_matches_names_that_sound_the_same() -> None:
    matcher = KeywordMatcher(
        [keyword("Qualtrics", phonetic=True), keyword("Gainsight", phonetic=True)]
    )
    assert heard(matcher, "we use qualtrix for surveys") == ["Qualtrics=qualtrix"]
    assert heard(matcher, "and gainsite for renewals") == ["Gainsight=gainsite"]
    assert heard(matcher, "we use surveys") == []
    assert heard(KeywordMatcher([keyword("Qualtrics")]), "we use qualtrix") == []


def test_patterns_run_in_re2() -> None:
    matcher = KeywordMatcher([keyword("", patterns=[r"\b\d+ (users|seats)\b"])])
    assert heard(matcher, "we need 250 seats by May") == [r"\b\d+ (users|seats)\b=250 seats"]
    assert heard(matcher, "seats are fine") == []


def test_exclude_phrases_silence_nearby_mentions() -> None:
    conditions = pb.KeywordConditions(exclude_phrases=["don't use", "never used"])
    matcher = KeywordMatcher([keyword("Salesforce", conditions=conditions)])
    assert heard(matcher, "we don't use Salesforce") == []
    assert heard(matcher, "honestly we never used Salesforce much") == []
    # Far enough away, the exclusion is about something else.
    assert heard(matcher, "we don't use it. Our team lives in Salesforce") == [
        "Salesforce=salesforce"
    ]
    assert heard(matcher, "our whole sales team lives in Salesforce every day") == [
        "Salesforce=salesforce"
    ]


def test_matches_must_end_in_the_fresh_tokens() -> None:
    matcher = KeywordMatcher([keyword("send a contract"), keyword("send")])
    stream = tokens("can you send a contract")
    found = [(m.phrase, m.start) for m in matcher.find(stream, first_fresh=4)]
    assert found == [("send a contract", 2)]


def test_ten_thousand_keywords_compile_and_match() -> None:
    matcher = KeywordMatcher([keyword(f"product {n} plan") for n in range(10_000)])
    assert heard(matcher, "we are on product 9876 plan now") == [
        "product 9876 plan=product 9876 plan"
    ]


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM.bundled()


def test_semantic_examples_fire_on_paraphrases(minilm: MiniLM) -> None:
    budget = keyword("", examples=["that's more than we budgeted", "it's too expensive for us"])
    matcher = KeywordMatcher([budget], minilm)
    assert matcher.uses_sentences
    [match] = matcher.find_meaning("Honestly this is way over our budget for the year.")
    assert match.keyword is matcher.keywords[0] and 0.6 <= match.score <= 1
    assert matcher.find_meaning("Can you send me the contract by Friday?") == []
    assert matcher.find_meaning("The weather in Boston is lovely today.") == []


def test_overlapping_matches_of_one_keyword_keep_the_best() -> None:
    matcher = KeywordMatcher([keyword("Salesforce", fuzzy_threshold=0.85)])
    assert heard(matcher, "we use sales force for reporting") == ["Salesforce=sales force"]
    assert heard(matcher, "we use salesforse for reporting") == ["Salesforce=salesforse"]
