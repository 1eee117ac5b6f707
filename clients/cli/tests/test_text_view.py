from __future__ import annotations

import io

from callcue.call.v1 import call_pb2
from callcue.cli.text_view import EventView


def detection(state: int, detection_id: str = "d1") -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id="s1",
        detection=call_pb2.Detection(
            detection_id=detection_id,
            matched_text="too expensive",
            state=state,  # type: ignore[arg-type]
            talking_point=call_pb2.TalkingPoint(
                title="Price objection", body="Reframe on value.", category=3
            ),
        ),
    )


def test_a_tentative_card_shows_once_and_its_confirmation_adds_nothing() -> None:
    out = io.StringIO()
    view = EventView(out)
    view.begin(0.0)
    view.show(detection(call_pb2.DETECTION_STATE_TENTATIVE))
    view.show(detection(call_pb2.DETECTION_STATE_CONFIRMED))
    text = out.getvalue()
    assert text.count("TALKING POINT [pricing] Price objection") == 1
    assert "Reframe on value." in text
    assert len(view.report.detections) == 1 and len(view.report.detection_delays) == 1


def test_a_retraction_withdraws_the_card() -> None:
    out = io.StringIO()
    view = EventView(out)
    view.show(detection(call_pb2.DETECTION_STATE_TENTATIVE))
    view.show(detection(call_pb2.DETECTION_STATE_RETRACTED))
    assert "withdrawn: Price objection" in out.getvalue()
    assert view.report.detections == [] and view.report.shown == {}
    assert view.report.detection_delays == []  # not a call paced in real time
