"""Card and social security numbers masked before a transcript leaves memory."""

from __future__ import annotations

import os
import re
import uuid
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
import redis.asyncio as redis

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.settings import Environment
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway import app as gateway_app
from callcue.gateway.call_session import CallSession, Downstream
from callcue.gateway.redaction import (
    Redactor,
    card_length,
    luhn_valid,
    redact_segment,
    redact_text,
)
from callcue.gateway.redaction_policy import Action, Kind, Policy, PolicyError, PolicyStore
from callcue.gateway.session_store import SessionStore
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.notifier import app as notifier_app
from callcue.notifier.redis_log import RedisEventLog
from callcue.notifier.settings import Settings as NotifierSettings
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, Stack

REDIS_URL = os.environ.get("CALLCUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# UUIDs, hex ids (with a letter, so a run of card digits is never taken for one) and decimals
# (timings): random digits, none of them anything a caller said.
NOT_SPOKEN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b|\b\d+\.\d+\b",
    re.I,
)


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("my card is 4111 1111 1111 1111, thanks", "my card is [CARD ****1111], thanks"),
        ("It's 4111-1111-1111-1111.", "It's [CARD ****1111]."),
        ("4111111111111111", "[CARD ****1111]"),
        ("four one one one one one one one one one one one one one one one", "[CARD ****1111]"),
        (
            "Visa four one one one, one one one one, one one one one, one one one one.",
            "Visa [CARD ****1111].",
        ),
        ("forty one eleven eleven eleven eleven eleven eleven eleven", "[CARD ****1111]"),
        ("5555 5555 5555 4444 and it expires 12 26", "[CARD ****4444] and it expires [NUMBER]"),
        # Twelve digits or more in a segment: every number in it goes, the expiry too.
        ("4111 1111 1111 1111 12 26", "[CARD ****1111] [NUMBER]"),
        (
            "McCarnum 55 made the pammon, 0.096, 4023, 59 21.",
            "McCarnum 55 made the pammon, [NUMBER].",
        ),
        ("order 1234 5678 9012", "order [NUMBER]"),
        # Said about a card, a misheard digit (the Luhn check fails) is masked all the same.
        (
            "The card is 55, 0, 1, 10, 10, until 43, 41, 92, 54.",
            "The card is [NUMBER], until [NUMBER].",
        ),
        ("my visa is 4111 1111 1111 1112", "my visa is [NUMBER]"),
        # Thirteen digits or more are never shown: no phone number is that long.
        ("order 1234 5678 9012 3456", "order [NUMBER]"),
        ("Okay, 5-1, 7, 8, 1, 2, 8, 6, 5, 7, 0, 7, 0, 4, 9.", "Okay, [NUMBER]."),
        ("3782 822463 10005", "[CARD ****0005]"),  # Amex, 15 digits
        ("it is 4111. 1111. 1111. 1111.", "it is [CARD ****1111]."),
        (
            "my social is one two three four five six seven eight nine",
            "my social is [SSN ***-**-6789]",
        ),
        ("SSN 123-45-6789.", "SSN [SSN ***-**-6789]."),
        ("it's 123-45-6789", "it's [SSN ***-**-6789]"),
    ],
)
def test_numbers_are_masked_as_written_and_as_said(said: str, shown: str) -> None:
    assert redact_text(said) == shown


@pytest.mark.parametrize(
    "said",
    [
        "order 1234 5678",  # eight digits, not a card
        "we meet at 3 on March 5th",  # a date, said with no word of a birth
        "the invoice from March 3, 2024 was paid",  # a recent date, not a birth
        "visit example.com for the details",  # a domain, said with no word of email
        "I have two questions about the way it works",
        "the total was 1,250 dollars on my account",
        "my zip is 94107",
        "the number is 123456789",  # nine digits, nothing about a social security number
        "we have 10 seats for 20 percent off",
        "I was born in nineteen eighty five",
        "one of the two plans",
        "we work 9-to-5 on weekdays",
        "in 2019, 2020 we had 12 people",
        "the model 2021-2022 is 30 percent off",
        "steps 1, 2, 3 and 4, then 5",  # one by one, but too few for a number
    ],
)
def test_other_numbers_are_left_alone(said: str) -> None:
    assert redact_text(said) == said


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("call me at 555 123 4567", "call me at [PHONE ****4567]"),
        ("My number is (415) 555-0134.", "My number is [PHONE ****0134]."),
        ("it's 1-800-555-1234", "it's [PHONE ****1234]"),
        (
            "call me at five five five, one two three, four five six seven.",
            "call me at [PHONE ****4567].",
        ),
        ("my cell is 555 0134", "my cell is [PHONE ****0134]"),  # seven, said of a phone
        # Said of a phone, a digit lost or heard twice: still a phone number.
        ("You can call me on it, 7-6, 9-0-3, 6-1-8-2.", "You can call me on it, [PHONE ****6182]."),
        ("Yes. My S-N is 44, 148, 74, 11.", "Yes. My S-N is [SSN ***-**-7411]."),
        # Seven of the nine digits heard, dashed, and the N of "S-S-N" said after stuck on.
        ("My S-N is 421-4-8-2-6-2-N.", "My S-N is [NUMBER]."),
        ("Yes, my S S N in 3 6 4 7 5 8 6 4 5", "Yes, my S S N in [SSN ***-**-8645]"),
        # Nine digits or more read out in small groups, the words about them misheard.
        ("Let's all show in 2 2 4 2 3 4 5 1 3", "Let's all show in [NUMBER]"),
        ("Yes, my head in 31-6, 22-4839.", "Yes, my head in [NUMBER]."),
        ("Yes, that is 1-8-5, 1-2, 4-4-9-3.", "Yes, that is [NUMBER]."),
        # Digits said one by one, seven or more: read out, however many were heard.
        ("my F.M.M. is 3-1-5-5-1-3-8-1-M", "my F.M.M. is [NUMBER]"),
        ("and it's 4 0 2 9 1 7 7", "and it's [NUMBER]"),
        # Dashed digits with the word tiny.en made of a "double" among them.
        (
            "It's 515-7, 7-1-nubble-7, 0-2-4-7, Nubble-2-8-2, and the textile in March.",
            "It's [NUMBER], and the textile in March.",
        ),
        ("I was born on January 20th and 1971.", "I was born on [DATE OF BIRTH]."),
        ("I was born over there in 1993.", "I was born over there in [DATE OF BIRTH]."),
        (
            "checking account 12345678 and routing 021000021",
            "checking account [ACCOUNT ****5678] and routing [ACCOUNT ****0021]",
        ),
        (
            "my account number is one two three four five six seven",
            "my account number is [ACCOUNT ****4567]",
        ),
        ("email me at jane.doe@example.com.", "email me at [EMAIL]."),
        ("it is jane dot doe at example dot com", "it is [EMAIL]"),
        ("my date of birth is March 3rd, 1985.", "my date of birth is [DATE OF BIRTH]."),
        (
            "I was born on the third of march nineteen eighty five",
            "I was born on [DATE OF BIRTH]",
        ),
        ("born 03/04/1985", "born [DATE OF BIRTH]"),
        ("I live at 42 Wallaby Way, Sydney.", "I live at [ADDRESS], Sydney."),
        ("send it to one two three Main Street apartment 4", "send it to [ADDRESS]"),
        # As tiny.en mishears them: "at" as "and", "date of birth" as anything.
        ("Send it to Peter Clark and example.com", "Send it to [EMAIL]"),
        ("You can email me at www.janedoeatexample.com", "You can email me at [EMAIL]"),
        ("my mate on earth is September 28, 1941.", "my mate on earth is [DATE OF BIRTH]."),
        ("I live at 9500 13 Washington Lane.", "I live at [ADDRESS]."),
        # A Luhn-valid stretch inside a longer run: an order number misheard, not a card.
        (
            "the order is 3, 4, 4, 1, 4, 5, 1, 4, 0, 6, 0, 4, 5, 2, 0.",
            "the order is [NUMBER].",
        ),
    ],
)
def test_other_personal_data_is_masked(said: str, shown: str) -> None:
    assert redact_text(said) == shown


def test_a_tenants_policy_masks_drops_or_keeps_each_kind() -> None:
    said = "Call 555 123 4567, or jane@example.com; card 4111 1111 1111 1111."
    drop_phone = Policy({Kind.PHONE_NUMBER: Action.DROP, Kind.EMAIL: Action.KEEP})
    assert redact_text(said, drop_phone) == "Call, or jane@example.com; card [CARD ****1111]."
    drop_cards = Policy({Kind.CARD: Action.DROP})
    assert redact_text(said, drop_cards) == "Call [PHONE ****4567], or [EMAIL]; card."
    for kind in (Kind.CARD, Kind.SSN):
        with pytest.raises(PolicyError, match="always redacted"):
            Policy({kind: Action.KEEP})
    segment = call_pb2.TranscriptSegment(text="Call 555 123 4567 now", is_final=True)
    for index, text in enumerate(segment.text.split()):
        segment.words.add(text=text).start_offset.FromMilliseconds(index * 300)
    dropped = redact_segment(segment, drop_phone)
    assert dropped.text == "Call now" and [w.text for w in dropped.words] == ["Call", "now"]


def test_partials_hide_emails_and_addresses_as_they_are_said() -> None:
    redactor = Redactor()
    partial = call_pb2.TranscriptSegment(text="it is jane.doe@example.com and I live at 42")
    (shown,) = redactor.partial(partial)
    assert shown.text == "it is [EMAIL] and I live at 42"
    partial = call_pb2.TranscriptSegment(text="I live at 42 Wallaby Way")
    (shown,) = redactor.partial(partial)
    assert shown.text == "I live at [ADDRESS]"


def test_the_luhn_check_and_the_networks_lengths() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert luhn_valid("411111111111116") and not card_length("411111111111116")  # Visa: 15
    assert card_length("378282246310005") and not card_length("3782822463100055")


def _word(text: str, start: float, end: float) -> call_pb2.Word:
    word = call_pb2.Word(text=text, confidence=0.9)
    word.start_offset.FromMilliseconds(int(start * 1000))
    word.end_offset.FromMilliseconds(int(end * 1000))
    return word


def test_a_segments_words_become_one_masked_word_with_their_span() -> None:
    words = ["My", "card", "is", "4111", "1111", "1111", "1111."]
    segment = call_pb2.TranscriptSegment(
        text=" ".join(words),
        is_final=True,
        words=[_word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(words)],
    )
    redacted = redact_segment(segment)
    assert redacted.text == "My card is [CARD ****1111]."
    assert [w.text for w in redacted.words] == ["My", "card", "is", "[CARD ****1111]."]
    masked = redacted.words[-1]
    assert (
        masked.start_offset.ToMilliseconds() == 1500 and masked.end_offset.ToMilliseconds() == 3400
    )
    assert "4111" in segment.text, "the original is untouched (the detector gets it)"
    plain = call_pb2.TranscriptSegment(text="no numbers here")
    assert redact_segment(plain) is plain


def _final(text: str, channel: int = 0) -> call_pb2.TranscriptSegment:
    return call_pb2.TranscriptSegment(
        segment_id=str(uuid.uuid4()), text=text, is_final=True, channel=channel
    )


def test_a_number_read_out_across_two_finals_is_masked_whole() -> None:
    redactor = Redactor()
    first = _final("Sure, my card number is four one one one, one one one one,")
    assert redactor.final(first) == []  # it may go on: wait for the next final
    other = redactor.final(_final("Okay.", channel=1))  # the other party is not held up
    assert [s.text for s in other] == ["Okay."]
    shown = redactor.final(_final("one one one one, one one one one. Thanks."))
    assert [s.text for s in shown] == ["Sure, my card number is [CARD ****1111],", "Thanks."]
    assert redactor.touched(first.segment_id)


def test_partials_never_show_a_long_run_of_digits() -> None:
    redactor = Redactor()
    partial = call_pb2.TranscriptSegment(text="it is 4111 1111 11", channel=0)
    assert [s.text for s in redactor.partial(partial)] == ["it is [NUMBER]"]
    short = call_pb2.TranscriptSegment(text="we have 10 seats", channel=0)
    assert [s.text for s in redactor.partial(short)] == ["we have 10 seats"]
    redactor.final(_final("my card is 4111 1111"))  # held
    later = call_pb2.TranscriptSegment(text="1111 and", channel=0)
    assert [s.text for s in redactor.partial(later)] == ["[NUMBER] and"]


def test_a_waiting_final_is_let_go_once_the_call_moves_on() -> None:
    redactor = Redactor()
    held = _final("I can do it for 20")
    held.end_offset.FromSeconds(10)
    assert redactor.final(held) == []
    soon = _final("Okay.", channel=1)
    soon.start_offset.FromSeconds(11)
    assert [s.text for s in redactor.final(soon)] == ["Okay."]  # still waiting
    later = call_pb2.TranscriptSegment(text="so", channel=1)
    later.start_offset.FromSeconds(14)
    assert [s.text for s in redactor.partial(later)] == ["I can do it for 20", "so"]


def test_what_waits_at_the_end_of_the_call_is_released_masked() -> None:
    redactor = Redactor()
    assert redactor.final(_final("the code is 4111 1111 1111 1111")) == []
    assert [s.text for s in redactor.flush()] == ["the code is [CARD ****1111]"]
    assert redactor.final(_final("we have ten")) == []
    assert [s.text for s in redactor.flush()] == ["we have ten"]


async def test_numbers_never_reach_subscribers_or_the_database_but_keywords_still_fire(
    stack: Stack, database_url: str, playbook: str
) -> None:
    await database.migrate(database_url, "gateway", gateway_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=2)
    store = SessionStore(pool)
    # A keyword that only the unmasked words can fire.
    await stack.detector.CreateKeyword(
        detector_pb.CreateKeywordRequest(
            keyword=detector_pb.Keyword(
                playbook_id=playbook,
                patterns=[r"\d{4} \d{4}"],
                talking_point=call_pb2.TalkingPoint(title="Card read out: stop recording"),
            )
        )
    )
    session = await store.create("acme", pb.SESSION_SOURCE_LIVE, pb.CallConfig())
    downstream = stack.internal
    call = CallSession(session.session_id, [playbook], downstream, store)
    first = await call.start("call started")
    # Read out in two finals, the way the transcriber settles words while someone speaks.
    call.add_segment(_final("Sure, it is 4111 1111"))
    call.add_segment(_final("1111 1111 and my social is 123-45-6789."))
    await call.finish(call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED))
    events = [first] + [event async for event in call.events()]
    await call.close("over")
    subscribed = [
        r.event
        async for r in stack.notifier.Subscribe(
            notifier_pb.SubscribeRequest(session_id=session.session_id)
        )
    ]
    segments, detections = await store.transcript("acme", session.session_id)
    await pool.close()
    shown = ["Sure, it is [CARD ****1111]", "and my social is [SSN ***-**-6789]."]
    assert [e.transcript.text for e in events if e.HasField("transcript")] == shown
    assert [s.text for s in segments] == shown
    fired = [e.detection for e in events if e.HasField("detection")]
    assert fired and fired[-1].talking_point.title == "Card read out: stop recording"
    for seen in (str(events), str(subscribed), str(segments), str(detections)):
        # Only the last four digits, behind the mask's stars, may show.
        assert not re.search(r"(?<!\*)\b(4111|1111)\b|123-45", seen), seen


async def test_a_tenants_policy_is_set_through_the_api_and_applies_to_its_next_calls(
    stack: Stack, database_url: str, playbook: str
) -> None:
    policy = (await stack.gateway.GetRedactionPolicy(pb.GetRedactionPolicyRequest())).policy
    assert {pb.RedactionAction.Name(r.action) for r in policy.rules} == {"REDACTION_ACTION_MASK"}
    assert len(policy.rules) == 7
    for kind, action, field in (
        (pb.PII_KIND_PAYMENT_CARD, pb.REDACTION_ACTION_KEEP, "rules[0].action"),
        (pb.PII_KIND_UNSPECIFIED, pb.REDACTION_ACTION_MASK, "rules[0].kind"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.gateway.UpdateRedactionPolicy(
                pb.UpdateRedactionPolicyRequest(rules=[pb.RedactionRule(kind=kind, action=action)])
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or "")
    changed = await stack.gateway.UpdateRedactionPolicy(
        pb.UpdateRedactionPolicyRequest(
            rules=[
                pb.RedactionRule(kind=pb.PII_KIND_PHONE_NUMBER, action=pb.REDACTION_ACTION_DROP),
                pb.RedactionRule(kind=pb.PII_KIND_EMAIL, action=pb.REDACTION_ACTION_KEEP),
            ]
        )
    )
    actions = {r.kind: r.action for r in changed.policy.rules}
    assert actions[pb.PII_KIND_PHONE_NUMBER] == pb.REDACTION_ACTION_DROP
    assert actions[pb.PII_KIND_SSN] == pb.REDACTION_ACTION_MASK
    try:
        pool = await database.open_pool(database_url, max_size=2)
        store = SessionStore(pool)
        policy_of_acme = await PolicyStore(pool).get("acme")
        assert policy_of_acme.action(Kind.PHONE_NUMBER) is Action.DROP
        # Another tenant's policy is its own.
        assert (await PolicyStore(pool).get("globex")).action(Kind.PHONE_NUMBER) is Action.MASK
        session = await store.create("acme", pb.SESSION_SOURCE_LIVE, pb.CallConfig())
        call = CallSession(
            session.session_id, [playbook], stack.internal, store, policy=policy_of_acme
        )
        await call.start("call started")
        call.add_segment(_final("Reach me on 555 123 4567 or jane@example.com, thanks."))
        await call.finish(call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED))
        [_ async for _ in call.events()]
        await call.close("over")
        segments, _ = await store.transcript("acme", session.session_id)
        assert [s.text for s in segments] == ["Reach me on or jane@example.com, thanks."]
        await pool.close()
    finally:
        await stack.gateway.UpdateRedactionPolicy(
            pb.UpdateRedactionPolicyRequest(
                rules=[
                    pb.RedactionRule(
                        kind=pb.PII_KIND_PHONE_NUMBER, action=pb.REDACTION_ACTION_MASK
                    ),
                    pb.RedactionRule(kind=pb.PII_KIND_EMAIL, action=pb.REDACTION_ACTION_MASK),
                ]
            )
        )


async def test_a_call_that_reads_out_personal_data_leaves_no_trace_of_it(
    stack: Stack,
    database_url: str,
    playbook: str,
    service_trust: ServiceTrust,
    authenticator: ApiKeyAuthenticator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A call reads out a card number, an SSN, a phone number and an email address; then
    PostgreSQL (every table of the database), Redis (every key of the notifier's log), the
    logs of every service, each export and what subscribers got are searched for them."""
    prefix = f"callcue-test:{uuid.uuid4().hex[:8]}:"
    events_log = RedisEventLog(
        REDIS_URL, events_per_session=1000, session_ttl_seconds=600, prefix=prefix
    )
    notifier = notifier_app.build_server(
        NotifierSettings.from_env(
            Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
        ),
        events_log,
        service_trust.doors("notifier", authenticator),
    )
    notifier_port = await notifier.start()
    pool = await database.open_pool(database_url, max_size=2)
    store = SessionStore(pool)
    async with (
        open_channel(
            f"127.0.0.1:{notifier_port}", credentials=service_trust.as_gateway("acme", "notifier")
        ) as publishing,
        open_channel(
            f"127.0.0.1:{notifier_port}", credentials=api_key(stack.api_key)
        ) as subscribing,
    ):
        downstream = Downstream(
            transcriber=stack.internal.transcriber,
            detector=stack.internal.detector,
            notifier=notifier_service_pb2_grpc.PublisherServiceStub(publishing),
        )
        session = await store.create("acme", pb.SESSION_SOURCE_LIVE, pb.CallConfig())
        call = CallSession(session.session_id, [playbook], downstream, store, interim=True)
        first = await call.start("call started")
        for index, (text, final) in enumerate(
            (
                ("my card is 4556", False),
                ("my card is 4556 7375 8689 9855", True),
                ("and my social is 078-05-1120.", True),
                ("call me at 617 555 0199 or", True),
                ("harriet.quimby@example.com, thanks.", True),
            )
        ):
            segment = call_pb2.TranscriptSegment(segment_id=f"s{index}", text=text, is_final=final)
            call.add_segment(segment)
        await call.finish(call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED))
        events = [first] + [event async for event in call.events()]
        await call.close("over")
        subscriber = notifier_service_pb2_grpc.SubscriberServiceStub(subscribing)
        subscribed = [
            r.event
            async for r in subscriber.Subscribe(
                notifier_pb.SubscribeRequest(session_id=session.session_id)
            )
        ]
    exports = [
        (
            await stack.gateway.ExportTranscript(
                pb.ExportTranscriptRequest(session_id=session.session_id, format=form)
            )
        ).content.decode()
        for form in (
            pb.TRANSCRIPT_FORMAT_SRT,
            pb.TRANSCRIPT_FORMAT_WEBVTT,
            pb.TRANSCRIPT_FORMAT_JSON,
        )
    ]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        tables = await (
            await conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ).fetchall()
        stored = []
        for (table,) in tables:
            rows = await (await conn.execute(f'SELECT t::text FROM "{table}" t')).fetchall()
            stored += [row[0] for row in rows]
    redis_client = redis.from_url(REDIS_URL)
    kept = []
    async for key in redis_client.scan_iter(f"{prefix}*"):
        kind = await redis_client.type(key)
        if kind == b"stream":
            kept += [str(fields) for _, fields in await redis_client.xrange(key)]
        elif kind == b"string":
            kept.append(str(await redis_client.get(key)))
    assert kept, "the notifier's log in Redis holds the call"
    await redis_client.delete(*[key async for key in redis_client.scan_iter(f"{prefix}*")])
    await redis_client.aclose()
    await notifier.stop(0)
    await events_log.close()
    await pool.close()
    logged = capsys.readouterr()
    shown = [
        e.transcript.text for e in events if e.HasField("transcript") and e.transcript.is_final
    ]
    assert "[CARD ****9855]" in shown[0] and "[SSN ***-**-1120]" in " ".join(shown)
    assert "[PHONE ****0199]" in " ".join(shown) and "[EMAIL]" in " ".join(shown)
    secrets = re.compile(r"\b(4556|7375|8689|078-05|07805|617|harriet|quimby)\b", re.I)
    for where, seen in (
        ("events", str(events)),
        ("subscribers", str(subscribed)),
        ("exports", " ".join(exports)),
        ("PostgreSQL", " ".join(stored)),
        ("Redis", " ".join(kept)),
        ("logs", logged.out + logged.err),
    ):
        # Ids, key hashes and timings are random digits that can hold '4556' or '617' by chance.
        found = secrets.search(NOT_SPOKEN.sub(" ", seen))
        assert not found, f"{where}: {seen[max(0, found.start() - 200) : found.end() + 50]}"
