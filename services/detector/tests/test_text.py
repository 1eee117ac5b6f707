from __future__ import annotations

from callcue.detector.text import normalize, tokens


def test_tokens_fold_case_and_drop_punctuation() -> None:
    assert tokens(" Salesforce,") == ["salesforce"]
    assert tokens("That's TOO expensive!") == ["that's", "too", "expensive"]


def test_hyphens_and_typographic_apostrophes() -> None:
    assert tokens("follow-up") == ["follow", "up"]
    assert tokens("don\u2019t") == ["don't"]


def test_normalize_of_punctuation_only_is_empty() -> None:
    assert normalize(" ?! -- ") == ""
