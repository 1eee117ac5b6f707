from __future__ import annotations

from callcue.call.v1 import call_pb2
from callcue.console.live_service import Wall
from callcue.console.people import Person, Role
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

REP = Person("rep@acme.test", "acme", Role.REP)
LEAD = Person("lead@acme.test", "acme", Role.SUPERVISOR)


def session(
    session_id: str, rep: str, source: int = gateway_pb.SESSION_SOURCE_LIVE
) -> gateway_pb.Session:
    return gateway_pb.Session(
        session_id=session_id,
        source=source,  # type: ignore[arg-type]
        state=call_pb2.CALL_STATE_ACTIVE,
        metadata={"rep": rep},
    )


PRICING = call_pb2.TALKING_POINT_CATEGORY_PRICING
TENTATIVE, CONFIRMED = call_pb2.DETECTION_STATE_TENTATIVE, call_pb2.DETECTION_STATE_CONFIRMED


def detection(detection_id: str, category: int, state: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id="s1",
        detection=call_pb2.Detection(
            detection_id=detection_id,
            state=state,  # type: ignore[arg-type]
            talking_point=call_pb2.TalkingPoint(title=detection_id, category=category),  # type: ignore[arg-type]
        ),
    )


def test_a_rep_sees_only_their_calls_and_a_supervisor_all_live_ones() -> None:
    rep_wall, lead_wall = Wall(REP), Wall(LEAD)
    mine, theirs = session("s1", REP.username), session("s2", "someone-else")
    upload = session("s3", REP.username, gateway_pb.SESSION_SOURCE_UPLOAD)
    assert rep_wall.add(mine, ()) is not None
    assert rep_wall.add(theirs, ()) is None
    assert rep_wall.add(upload, ()) is None
    assert lead_wall.add(theirs, ()) is not None
    assert {"s1", "s2", "s3"} == rep_wall.known


def test_confirmed_cards_are_counted_once_per_category_and_tentative_ones_not() -> None:
    wall = Wall(LEAD)
    first = detection(
        "d1", call_pb2.TALKING_POINT_CATEGORY_PRICING, call_pb2.DETECTION_STATE_CONFIRMED
    )
    call = wall.add(session("s1", "x"), [first.detection])
    assert call is not None
    assert wall.apply(first) is None  # already counted from the snapshot
    tentative = detection(
        "d2", call_pb2.TALKING_POINT_CATEGORY_PRICING, call_pb2.DETECTION_STATE_TENTATIVE
    )
    assert wall.apply(tentative) is None
    confirmed = detection(
        "d2", call_pb2.TALKING_POINT_CATEGORY_PRICING, call_pb2.DETECTION_STATE_CONFIRMED
    )
    changed = wall.apply(confirmed)
    assert changed is not None
    assert [(c.category, c.count) for c in changed.category_counts] == [(PRICING, 2)]
    assert changed.last_detection.detection_id == "d2"


def test_an_ended_call_is_sent_once_more_then_forgotten() -> None:
    wall = Wall(LEAD)
    wall.add(session("s1", "x"), ())
    ended = call_pb2.CallEvent(
        session_id="s1", status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED)
    )
    changed = wall.apply(ended)
    assert changed is not None and changed.ended
    assert wall.apply(ended) is None
