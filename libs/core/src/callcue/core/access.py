"""Who may call which RPC: one table for every service, checked by the server interceptor
on every call, failing closed for a method the table does not name.

A public RPC needs a scope of the caller's key (a callcue service acting for a caller
carries that caller's scopes). An internal RPC needs a callcue service's credential
(``callcue.core.service_tokens``); a tenant key is refused whatever its scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc
from google.rpc import error_details_pb2

from callcue.core import scopes
from callcue.core.auth import Caller
from callcue.core.errors import RpcError

INTERNAL: Final = "internal"
# google.rpc.ErrorInfo.domain of the refusals.
DOMAIN: Final = "callcue.dev"

# service -> method -> the scope it needs, or INTERNAL.
Rules = Mapping[str, Mapping[str, str]]

_PLAYBOOKS = "callcue.detector.v1.PlaybookService"
RULES: Rules = {
    "callcue.gateway.v1.GatewayService": {
        "StreamCall": scopes.CALLS_STREAM,
        "UploadRecording": scopes.CALLS_STREAM,
        "GetSession": scopes.CALLS_READ,
        "ListSessions": scopes.CALLS_READ,
        "GetTranscript": scopes.CALLS_READ,
        "GetCallSummary": scopes.CALLS_READ,
        "ExportTranscript": scopes.SESSIONS_EXPORT,
        "GetRedactionPolicy": scopes.ADMIN,
        "UpdateRedactionPolicy": scopes.ADMIN,
    },
    _PLAYBOOKS: {
        **dict.fromkeys(
            ("GetPlaybook", "ListPlaybooks", "ExportPlaybook", "TestPlaybook"),
            scopes.PLAYBOOKS_READ,
        ),
        **dict.fromkeys(("GetKeyword", "ListKeywords"), scopes.PLAYBOOKS_READ),
        **dict.fromkeys(
            ("CreatePlaybook", "UpdatePlaybook", "DeletePlaybook", "ImportPlaybook"),
            scopes.PLAYBOOKS_WRITE,
        ),
        **dict.fromkeys(
            ("CreateKeyword", "UpdateKeyword", "DeleteKeyword"), scopes.PLAYBOOKS_WRITE
        ),
    },
    "callcue.notifier.v1.SubscriberService": {
        "Subscribe": scopes.SUBSCRIBE,
        "SubscribeAll": scopes.SUBSCRIBE,
    },
    "callcue.telephony.v1.ConnectorService": dict.fromkeys(
        ("CreateConnector", "GetConnector", "ListConnectors", "DeleteConnector"), scopes.ADMIN
    ),
    "callcue.detector.v1.DetectionService": {"Detect": INTERNAL},
    "callcue.notifier.v1.PublisherService": {"Publish": INTERNAL},
    "callcue.transcriber.v1.TranscriberService": {
        "StreamingTranscribe": INTERNAL,
        "TranscribeFile": INTERNAL,
    },
}


def rule_of(rules: Rules, method: str) -> str | None:
    """The rule of ``/package.Service/Method``; None when the table has none."""
    service, _, name = method.lstrip("/").rpartition("/")
    return rules.get(service, {}).get(name)


def authorize(rules: Rules, method: str, caller: Caller) -> None:
    """Returns if ``caller`` may call ``method``; raises PERMISSION_DENIED saying why not."""
    rule = rule_of(rules, method)
    if rule is None:
        raise RpcError(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not open to any caller")
    if caller.service:
        # A service acting for a caller: internal RPCs are its to call; public ones
        # still need the scope of the caller it acts for.
        if rule == INTERNAL or scopes.allows(caller.scopes, rule):
            return
    elif rule == INTERNAL:
        service = method.lstrip("/").rpartition("/")[0]
        raise RpcError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{service} is internal: only callcue services may call it, not API keys",
            error_details_pb2.ErrorInfo(reason="INTERNAL_SERVICE", domain=DOMAIN),
        )
    elif scopes.allows(caller.scopes, rule):
        return
    raise RpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"API key {caller.key_id or '(none)'} lacks the scope {rule!r} that {method} needs; "
        f"create a key with --scope {rule}",
        error_details_pb2.ErrorInfo(
            reason="MISSING_SCOPE", domain=DOMAIN, metadata={"scope": rule}
        ),
    )
