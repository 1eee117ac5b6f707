from __future__ import annotations

from callcue.transcriber.prompt import whisper_prompt


def test_hotwords_are_a_sentence_of_their_own_before_what_was_said() -> None:
    prompt = whisper_prompt(["HubSpot", " Salesforce ", ""], ["We", "use", "it."])
    assert prompt == "Glossary: HubSpot, Salesforce. We use it."


def test_without_hotwords_the_prompt_is_what_was_said() -> None:
    assert whisper_prompt([], ["Hello", "there."]) == "Hello there."
    assert whisper_prompt(["  "], []) == ""
