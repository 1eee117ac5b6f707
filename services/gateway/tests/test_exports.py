from __future__ import annotations

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.gateway import exports
from callcue.gateway.summary import summarise
from callcue.gateway.v1 import gateway_service_pb2 as pb


def at(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def segment(text: str, start: float, end: float, channel: int = 0) -> call_pb2.TranscriptSegment:
    return call_pb2.TranscriptSegment(
        text=text,
        start_offset=at(start),
        end_offset=at(end),
        channel=channel,
        speaker=call_pb2.SPEAKER_ROLE_REP if channel == 0 else call_pb2.SPEAKER_ROLE_PROSPECT,
        is_final=True,
    )


PIECES = [
    segment("Can you send the", 1.0, 2.0, 1),
    segment("contract <today>?", 2.2, 3.1, 1),  # a settled piece of the same utterance
    segment("Sure.", 3.5, 4.0, 0),
    segment("Great, thanks.", 9.0, 10.25, 1),
]


def test_pieces_of_one_utterance_become_one_cue() -> None:
    assert [(c.start, c.end, c.text) for c in exports.cues(PIECES)] == [
        (1.0, 3.1, "Can you send the contract <today>?"),
        (3.5, 4.0, "Sure."),
        (9.0, 10.25, "Great, thanks."),
    ]


def test_srt() -> None:
    assert exports.srt(PIECES).splitlines()[:4] == [
        "1",
        "00:00:01,000 --> 00:00:03,100",
        "Prospect: Can you send the contract <today>?",
        "",
    ]
    assert "3\n00:00:09,000 --> 00:00:10,250\nProspect: Great, thanks." in exports.srt(PIECES)


def test_webvtt_names_voices_and_escapes_markup() -> None:
    vtt = exports.webvtt(PIECES)
    assert vtt.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:03.100\n")
    assert "<v Prospect>Can you send the contract &lt;today&gt;?" in vtt
    assert "<v Rep>Sure." in vtt


def test_summary_talk_time_and_keyword_counts() -> None:
    session = pb.Session(
        session_id="s",
        audio_duration=at(12),
        channel_roles=[call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT],
    )
    detections = [
        call_pb2.Detection(keyword_id="k1", phrase="contract", start_offset=at(2.2)),
        call_pb2.Detection(keyword_id="k2", phrase="thanks", start_offset=at(9.5)),
        call_pb2.Detection(keyword_id="k1", phrase="contract", start_offset=at(11)),
    ]
    summary = summarise(session, PIECES, detections)
    assert summary.duration.seconds == 12
    rep, prospect = summary.talk_times
    assert (rep.speaker, rep.talk_time.ToNanoseconds(), rep.word_count) == (
        call_pb2.SPEAKER_ROLE_REP,
        500_000_000,
        1,
    )
    assert prospect.talk_time.ToNanoseconds() == 3_150_000_000  # 1.0 + 0.9 + 1.25
    assert [(k.keyword_id, k.count) for k in summary.keyword_counts] == [("k1", 2), ("k2", 1)]
