"""What live calls and uploaded recordings share: detection, persistence, publishing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core.backoff import Backoff
from callcue.core.channel import open_channel
from callcue.core.durations import seconds
from callcue.core.service_tokens import ServiceSigner
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc as detector_grpc
from callcue.gateway import redaction
from callcue.gateway.publisher import SessionPublisher
from callcue.gateway.redaction_policy import Policy
from callcue.gateway.retries import GIVE_UP_AFTER, RETRYABLE
from callcue.gateway.session_store import SessionStore
from callcue.gateway.session_writer import PATIENCE_SECONDS, DatabaseBacklog, SessionWriter
from callcue.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as transcriber_grpc

log = structlog.get_logger("callcue.gateway")


@dataclass(frozen=True)
class Downstream:
    """Clients of the services a call flows through, built once in main."""

    transcriber: transcriber_grpc.TranscriberServiceAsyncStub
    detector: detector_grpc.DetectionServiceAsyncStub
    notifier: notifier_grpc.PublisherServiceAsyncStub

    @classmethod
    def connect(
        cls,
        transcriber: str,
        detector: str,
        notifier: str,
        *,
        signer: ServiceSigner | None,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> tuple[Downstream, list[grpc.aio.Channel]]:
        """Stubs for the three services at these addresses, and the channels to close.
        Each call carries the gateway's signed credential naming the caller's tenant (the
        caller's key stays here); without a signer (authentication off), nothing."""
        channels = [
            open_channel(
                address,
                max_message_bytes,
                credentials=None if signer is None else signer.credentials(audience),
            )
            for audience, address in (
                ("transcriber", transcriber),
                ("detector", detector),
                ("notifier", notifier),
            )
        ]
        return cls(
            transcriber=transcriber_grpc.TranscriberServiceStub(channels[0]),
            detector=detector_grpc.DetectionServiceStub(channels[1]),
            notifier=notifier_grpc.PublisherServiceStub(channels[2]),
        ), channels


_DONE = object()
# A call waits this long for its hotwords before its audio goes to the transcriber.
VOCABULARY_PATIENCE_SECONDS = 2.0


class CallSession:
    """Turns a session's transcript into ordered, persisted, published events.

    Producers call ``add_segment`` and ``add_status``; final segments also go to the
    detector, whose detections join the same queue. ``events()`` numbers and publishes
    every event and yields it, in one order for the caller and every subscriber, and hands
    final segments and confirmed detections to the session's writer, which stores them in
    that order too.
    """

    def __init__(
        self,
        session_id: str,
        playbook_ids: Sequence[str],
        downstream: Downstream,
        store: SessionStore,
        *,
        interim: bool = False,
        policy: Policy | None = None,
    ) -> None:
        self.session_id = session_id
        self._policy = policy or Policy()
        self._interim = interim
        self.writer = SessionWriter(store, session_id)
        self._publisher = SessionPublisher(downstream.notifier, session_id)
        self._queue: asyncio.Queue[call_pb2.CallEvent | object] = asyncio.Queue()
        self._to_detector: asyncio.Queue[detector_pb.DetectRequest | None] = asyncio.Queue()
        self._detect_config = detector_pb.DetectConfig(
            session_id=session_id, playbook_ids=playbook_ids, interim_results=interim
        )
        self._redactor = redaction.Redactor(self._policy)
        # Tentative detections not yet confirmed or retracted, by id.
        self._tentative: dict[str, call_pb2.Detection] = {}
        self._detector = downstream.detector
        self._detections: asyncio.Task[None] | None = None
        # The detector says what the call's playbooks listen for when its stream opens.
        self._vocabulary: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self.engine = ""
        self.model = ""
        self._ended = False

    async def start(self, message: str) -> call_pb2.CallEvent:
        """Starts the session's writer, publisher and detector stream, and publishes the
        first event, confirmed by the notifier before it returns."""
        self.writer.start()
        self._publisher.start()
        self._detections = asyncio.create_task(self._read_detections(self._detector))
        event = call_pb2.CallEvent(
            status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ACTIVE, message=message)
        )
        return await self._publisher.publish(event)

    def add_segment(self, segment: call_pb2.TranscriptSegment) -> None:
        # Card and social security numbers are masked in what is published and stored;
        # the detector hears the words as said, in memory only.
        if segment.is_final:
            for shown in self._redactor.final(segment):
                self._queue.put_nowait(call_pb2.CallEvent(transcript=shown))
        else:
            for shown in self._redactor.partial(segment):
                self._queue.put_nowait(call_pb2.CallEvent(transcript=shown))
        # With interim results the detector fires early on partials (TENTATIVE) and the
        # final confirms or retracts, so talking points show up before the words are final.
        if segment.is_final or self._interim:
            self._to_detector.put_nowait(detector_pb.DetectRequest(segment=segment))

    def add_status(self, status: call_pb2.CallStatus) -> None:
        if not status.engine:
            status.engine, status.model = self.engine, self.model
        self._queue.put_nowait(call_pb2.CallEvent(status=status))

    async def finish(self, status: call_pb2.CallStatus) -> None:
        """After the last segment: waits for the detector's last detections, then ends
        the event stream with this status."""
        self._to_detector.put_nowait(None)
        if self._detections is not None:
            await self._detections
        for shown in self._redactor.flush():
            self._queue.put_nowait(call_pb2.CallEvent(transcript=shown))
        self.add_status(status)
        self._queue.put_nowait(_DONE)

    async def _detector_requests(self) -> AsyncIterator[detector_pb.DetectRequest]:
        yield detector_pb.DetectRequest(config=self._detect_config)
        while (request := await self._to_detector.get()) is not None:
            yield request

    async def _read_detections(self, detector: detector_grpc.DetectionServiceAsyncStub) -> None:
        """Streams segments to the detector and its detections into the call. A lost
        detector replica is replaced by another (a new stream); what it had tentatively
        detected is retracted, since nothing will confirm it."""
        backoff = Backoff(give_up_after=GIVE_UP_AFTER)
        while True:
            try:
                async for response in detector.Detect(self._detector_requests()):
                    backoff.reset()
                    if response.WhichOneof("response") == "vocabulary":
                        if not self._vocabulary.done():
                            self._vocabulary.set_result(list(response.vocabulary.phrases))
                    else:
                        self._add_detection(response.detection)
                return
            except grpc.aio.AioRpcError as error:
                log.warning("detector stream lost", code=error.code().name, details=error.details())
                if not self._vocabulary.done():
                    self._vocabulary.set_result([])  # transcribe without hotwords, not later
                if error.code() not in RETRYABLE or backoff.exhausted:
                    self.add_status(
                        call_pb2.CallStatus(
                            state=call_pb2.CALL_STATE_ACTIVE,
                            message="detector unavailable, no talking points for now: "
                            f"{error.details()}",
                        )
                    )
                    return
                for detection in self._tentative.values():
                    detection.state = call_pb2.DETECTION_STATE_RETRACTED
                    self._queue.put_nowait(call_pb2.CallEvent(detection=detection))
                self._tentative.clear()
                await backoff.wait()
                self.add_status(
                    call_pb2.CallStatus(
                        state=call_pb2.CALL_STATE_ACTIVE,
                        message=f"detector lost ({error.code().name}); talking points resume "
                        "on another replica",
                    )
                )

    async def vocabulary(self, patience: float = VOCABULARY_PATIENCE_SECONDS) -> list[str]:
        """The phrases the call's playbooks listen for, as hotwords for the transcriber;
        none if the detector has not said within ``patience`` seconds of the call's start."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._vocabulary), patience)
        except TimeoutError:
            log.warning("no hotwords: the detector did not send the call's vocabulary")
            return []

    def _add_detection(self, detection: call_pb2.Detection) -> None:
        if self._redactor.touched(detection.segment_id):
            detection = redaction.redact_detection(detection, self._policy)
        if detection.state == call_pb2.DETECTION_STATE_TENTATIVE:
            self._tentative[detection.detection_id] = detection
        else:
            self._tentative.pop(detection.detection_id, None)
        self._queue.put_nowait(call_pb2.CallEvent(detection=detection))

    async def events(self) -> AsyncIterator[call_pb2.CallEvent]:
        while (item := await self._queue.get()) is not _DONE:
            assert isinstance(item, call_pb2.CallEvent)
            kind = item.WhichOneof("event")
            try:
                if kind == "transcript" and item.transcript.is_final:
                    self.writer.add_segment(item.transcript)
                    await self.writer.stored()
                elif (
                    kind == "detection"
                    and item.detection.state == call_pb2.DETECTION_STATE_CONFIRMED
                ):
                    self.writer.add_detection(item.detection)
                    await self.writer.stored()
            except DatabaseBacklog as backlog:
                raise errors.unavailable(
                    f"the session database has been unavailable too long ({backlog})"
                ) from None
            self._ended = kind == "status" and item.status.state != call_pb2.CALL_STATE_ACTIVE
            if self._ended:
                # Whoever sees the end can read the whole session back, its end included.
                status = item.status
                error = status.message if status.state == call_pb2.CALL_STATE_FAILED else ""
                writing = self.writer.finish(status.state, seconds(status.audio_received), error)
                await asyncio.wait([writing], timeout=PATIENCE_SECONDS)
            yield await self._publisher.publish(item)

    async def close(self, reason: str) -> None:
        """Releases the session's streams. A session that did not end normally (the
        caller went away) still gets a final status, so subscribers are not left waiting."""
        if self._detections is None:
            return  # never started: nobody was told of the session
        self._detections.cancel()
        if not self._ended:
            await self._publisher.publish(
                call_pb2.CallEvent(
                    status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_FAILED, message=reason)
                )
            )
        await self._publisher.close()
