from __future__ import annotations

import io

from callcue.call.v1 import call_pb2
from callcue.cli.call import CallReport, _show_detection


def detection(state: int, detection_id: str = "d1") -> call_pb2.Detection:
    return call_pb2.Detection(
        detection_id=detection_id,
        matched_text="too expensive",
        state=state,  # type: ignore[arg-type]
        talking_point=call_pb2.TalkingPoint(
            title="Price objection", body="Reframe on value.", category=3
        ),
    )


def test_a_tentative_card_shows_once_and_its_confirmation_adds_nothing() -> None:
    out, report = io.StringIO(), CallReport()
    _show_detection(detection(call_pb2.DETECTION_STATE_TENTATIVE), report, out, 1.0, True)
    _show_detection(detection(call_pb2.DETECTION_STATE_CONFIRMED), report, out, 2.0, True)
    text = out.getvalue()
    assert text.count("TALKING POINT [pricing] Price objection") == 1
    assert "Reframe on value." in text
    assert len(report.detections) == 1 and report.detection_delays == [1.0]


def test_a_retraction_withdraws_the_card() -> None:
    out, report = io.StringIO(), CallReport()
    _show_detection(detection(call_pb2.DETECTION_STATE_TENTATIVE), report, out, 1.0, False)
    _show_detection(detection(call_pb2.DETECTION_STATE_RETRACTED), report, out, 2.0, False)
    assert "withdrawn: Price objection" in out.getvalue()
    assert report.detections == [] and report.shown == {}
