from __future__ import annotations

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.detector.call_detector import CallDetector
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.v1 import detector_service_pb2 as pb

CONFIRMED = call_pb2.DETECTION_STATE_CONFIRMED
TENTATIVE = call_pb2.DETECTION_STATE_TENTATIVE
RETRACTED = call_pb2.DETECTION_STATE_RETRACTED


def keyword(phrase: str, speaker: int = 0, **conditions: object) -> pb.Keyword:
    return pb.Keyword(
        keyword_id=phrase,
        phrase=phrase,
        speaker=speaker,  # type: ignore[arg-type]
        talking_point=call_pb2.TalkingPoint(title=f"About {phrase}"),
        conditions=pb.KeywordConditions(**conditions),  # type: ignore[arg-type]
    )


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


def segment(
    text: str,
    at: float = 0.0,
    *,
    final: bool = True,
    channel: int = 0,
    speaker: int = call_pb2.SPEAKER_ROLE_PROSPECT,
) -> call_pb2.TranscriptSegment:
    """Whisper-style words (leading space, punctuation kept), 0.5 s each from ``at``."""
    words = [
        call_pb2.Word(
            text=f" {word}",
            start_offset=seconds(at + index * 0.5),
            end_offset=seconds(at + index * 0.5 + 0.4),
        )
        for index, word in enumerate(text.split())
    ]
    return call_pb2.TranscriptSegment(
        segment_id=f"{channel}-{at}",
        text=text,
        words=words,
        is_final=final,
        channel=channel,
        speaker=speaker,  # type: ignore[arg-type]
        start_offset=words[0].start_offset,
        end_offset=words[-1].end_offset,
    )


def detector(*keywords: pb.Keyword, interim: bool = True) -> CallDetector:
    return CallDetector(KeywordMatcher(keywords), interim=interim)


def states(detections: list[call_pb2.Detection]) -> list[tuple[str, int]]:
    return [(d.phrase, d.state) for d in detections]


def test_a_final_mention_has_its_words_and_timing() -> None:
    call = detector(keyword("too expensive"))
    [found] = call.update(segment("Honestly that is too expensive for us."))
    assert (found.matched_text, found.state) == ("too expensive", CONFIRMED)
    assert found.start_offset.ToNanoseconds() == 1_500_000_000
    assert found.end_offset.ToNanoseconds() == 2_400_000_000
    assert found.talking_point.title == "About too expensive"


def test_partials_fire_once_then_the_final_confirms_with_the_same_id() -> None:
    call = detector(keyword("contract"))
    [early] = call.update(segment("send the contract", final=False))
    assert early.state == TENTATIVE
    # The same mention in later partials gives nothing new.
    assert call.update(segment("send the contract today", final=False)) == []
    [confirmed] = call.update(segment("Send the contract today.", final=True))
    assert (confirmed.state, confirmed.detection_id) == (CONFIRMED, early.detection_id)


def test_a_final_without_the_mention_retracts_it() -> None:
    call = detector(keyword("contract"))
    [early] = call.update(segment("send the contract", final=False))
    [retracted] = call.update(segment("Send the contacts.", final=True))
    assert (retracted.state, retracted.detection_id) == (RETRACTED, early.detection_id)


def test_a_final_that_ends_before_the_mention_leaves_it_pending() -> None:
    call = detector(keyword("contract"))
    call.update(segment("we should send the contract", final=False))
    assert call.update(segment("We should", final=True)) == []
    [confirmed] = call.update(segment("send the contract.", 1.0, final=True))
    assert confirmed.state == CONFIRMED


def test_without_interim_results_partials_are_ignored() -> None:
    call = detector(keyword("contract"), interim=False)
    assert call.update(segment("the contract", final=False)) == []
    assert states(call.update(segment("The contract."))) == [("contract", CONFIRMED)]


def test_the_end_of_the_call_retracts_what_no_final_confirmed() -> None:
    call = detector(keyword("contract"))
    call.update(segment("the contract", final=False))
    assert states(call.finish()) == [("contract", RETRACTED)]


def test_a_phrase_split_across_two_finals_is_found_once() -> None:
    call = detector(keyword("send a contract"), keyword("contract"))
    assert call.update(segment("Can you send a", 0.0)) == []
    found = call.update(segment("contract today?", 2.0))
    assert sorted(d.phrase for d in found) == ["contract", "send a contract"]
    spanning = next(d for d in found if d.phrase == "send a contract")
    assert spanning.matched_text == "send a contract"
    assert call.update(segment("Thanks.", 3.0)) == []


def test_speaker_condition() -> None:
    call = detector(keyword("discount", speaker=call_pb2.SPEAKER_ROLE_PROSPECT))
    assert call.update(segment("any discount", speaker=call_pb2.SPEAKER_ROLE_REP)) == []
    assert len(call.update(segment("any discount", 5, speaker=call_pb2.SPEAKER_ROLE_PROSPECT))) == 1
    # One channel with both voices: nobody can tell who said it, so it fires.
    assert len(call.update(segment("any discount", 9, speaker=call_pb2.SPEAKER_ROLE_MIXED))) == 1


def test_cooldown_and_maximum_per_call() -> None:
    call = detector(keyword("price", cooldown=seconds(10), max_per_call=2))
    fired = [len(call.update(segment("the price", at))) for at in (0, 5, 11, 30, 60)]
    assert fired == [1, 0, 1, 0, 0]


def test_time_window_in_the_call() -> None:
    call = detector(keyword("agenda", active_from=seconds(0), active_until=seconds(60)))
    assert len(call.update(segment("the agenda", 10))) == 1
    assert call.update(segment("the agenda", 70)) == []


def test_channels_are_matched_apart() -> None:
    call = detector(keyword("send a contract"))
    call.update(segment("send a", 0, channel=0))
    assert call.update(segment("contract", 1, channel=1)) == []


def test_a_new_matcher_applies_to_the_running_call() -> None:
    call = detector(keyword("price", max_per_call=1))
    assert len(call.update(segment("the price", 0))) == 1
    call.matcher = KeywordMatcher([keyword("price", max_per_call=1), keyword("budget")])
    assert states(call.update(segment("price and budget", 5))) == [("budget", CONFIRMED)]


def test_two_mentions_in_one_final_are_two_detections() -> None:
    call = detector(keyword("checking account"))
    found = call.update(segment("My checking account. Okay, your checking account balance"))
    assert [d.start_offset.ToNanoseconds() for d in found] == [500_000_000, 2_500_000_000]


def test_a_mention_said_twice_in_a_row_is_one_detection() -> None:
    """hvb_calls: a caller's "savings" came out of Whisper as "Savings, savings."."""
    call = detector(keyword("savings"), keyword("debit card"))
    [found] = call.update(segment("Savings, savings."))
    assert found.start_offset.ToNanoseconds() == 0
    assert len(call.update(segment("my debit card", 5))) == 1
    assert call.update(segment("debit card.", 7)) == []  # the repeat spans two finals
    # Anything said between them makes them two mentions.
    assert len(call.update(segment("savings, my savings", 20))) == 2


def test_words_whisper_splits_are_read_as_the_text_says() -> None:
    """Whisper gives "don't" as " don" + "'t"; the text keeps it one word, so the
    keyword's "do not trigger when" phrase still sees it."""
    salesforce = keyword("Salesforce")
    salesforce.conditions.exclude_phrases.append("don't use")
    pieces = [" We", " don", "'t", " use", " Salesforce."]
    words = [
        call_pb2.Word(text=p, start_offset=seconds(i), end_offset=seconds(i + 0.5))
        for i, p in enumerate(pieces)
    ]
    text = "".join(pieces).strip()
    call = detector(salesforce)
    assert call.update(call_pb2.TranscriptSegment(text=text, words=words, is_final=True)) == []
    [found] = call.update(segment("Our partners live in Salesforce.", 10))
    assert found.start_offset.seconds == 12  # the timing of the word it came from
