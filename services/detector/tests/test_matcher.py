from __future__ import annotations

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.detector.matcher import PhraseMatcher
from callcue.detector.v1 import detector_service_pb2 as pb


def keyword(keyword_id: str, phrase: str, *aliases: str, speaker: int = 0) -> pb.Keyword:
    return pb.Keyword(
        keyword_id=keyword_id,
        phrase=phrase,
        aliases=aliases,
        speaker=speaker,  # type: ignore[arg-type]
        talking_point=call_pb2.TalkingPoint(title=f"About {phrase}"),
    )


def segment(text: str, speaker: int = call_pb2.SPEAKER_ROLE_PROSPECT) -> call_pb2.TranscriptSegment:
    """A segment with one Whisper-style word (leading space, punctuation) per 0.5 s."""
    words = []
    for index, word in enumerate(text.split()):
        words.append(
            call_pb2.Word(
                text=f" {word}",
                start_offset=duration_pb2.Duration(nanos=0, seconds=index),
                end_offset=duration_pb2.Duration(seconds=index, nanos=500_000_000),
            )
        )
    return call_pb2.TranscriptSegment(
        segment_id="seg",
        text=text,
        words=words,
        is_final=True,
        speaker=speaker,  # type: ignore[arg-type]
    )


def phrases(matcher: PhraseMatcher, text: str, **kwargs: int) -> list[str]:
    return [d.phrase for d in matcher.detect(segment(text, **kwargs))]


def test_matches_case_insensitively_across_punctuation() -> None:
    matcher = PhraseMatcher([keyword("k1", "Salesforce")])
    assert phrases(matcher, "We already use SALESFORCE, honestly.") == ["Salesforce"]


def test_only_on_word_boundaries() -> None:
    matcher = PhraseMatcher([keyword("k1", "price")])
    assert phrases(matcher, "The priceless view.") == []
    assert phrases(matcher, "What's the price?") == ["price"]


def test_phrase_spans_several_words_with_their_timing() -> None:
    matcher = PhraseMatcher([keyword("k1", "too expensive")])
    [detection] = matcher.detect(segment("Honestly that is too expensive for us."))
    assert detection.matched_text == "too expensive"
    assert detection.start_offset.seconds == 3
    assert (detection.end_offset.seconds, detection.end_offset.nanos) == (4, 500_000_000)
    assert detection.state == call_pb2.DETECTION_STATE_CONFIRMED
    assert detection.talking_point.title == "About too expensive"


def test_aliases_trigger_the_same_keyword_once_per_segment() -> None:
    matcher = PhraseMatcher([keyword("k1", "contract", "paperwork")])
    detections = matcher.detect(segment("Send the paperwork, the contract, anything."))
    assert [d.phrase for d in detections] == ["paperwork"]


def test_speaker_limited_keyword() -> None:
    matcher = PhraseMatcher([keyword("k1", "discount", speaker=call_pb2.SPEAKER_ROLE_PROSPECT)])
    assert phrases(matcher, "any discount", speaker=call_pb2.SPEAKER_ROLE_REP) == []
    assert phrases(matcher, "any discount", speaker=call_pb2.SPEAKER_ROLE_PROSPECT) == ["discount"]
    # With both speakers on one channel nobody can tell who said it, so it fires.
    assert phrases(matcher, "any discount", speaker=call_pb2.SPEAKER_ROLE_MIXED) == ["discount"]


def test_text_without_word_timings() -> None:
    matcher = PhraseMatcher([keyword("k1", "send a contract")])
    plain = call_pb2.TranscriptSegment(text="Can you send a contract?", is_final=True)
    [detection] = matcher.detect(plain)
    assert detection.matched_text == "send a contract"


def test_matched_text_rejoins_split_words() -> None:
    matcher = PhraseMatcher([keyword("k1", "follow up call")])
    words = [" book", " a", " follow", "-up", " call."]
    seg = call_pb2.TranscriptSegment(
        text="book a follow-up call.", words=[call_pb2.Word(text=w.strip()) for w in words]
    )
    assert matcher.detect(seg)[0].matched_text == "follow-up call."


def test_a_phrase_split_across_two_final_segments_is_found_once() -> None:
    matcher = PhraseMatcher([keyword("k1", "send a contract"), keyword("k2", "contract")])
    first, second = segment("Can you send a"), segment("contract today?")
    assert matcher.detect(first) == []
    detections = matcher.detect(second, matcher.tail(first))
    assert sorted(d.phrase for d in detections) == ["contract", "send a contract"]
    spanning = next(d for d in detections if d.phrase == "send a contract")
    assert spanning.matched_text == "send a contract"
    # Carried words alone never fire again.
    third = segment("Thanks.")
    assert matcher.detect(third, matcher.tail(second)) == []
