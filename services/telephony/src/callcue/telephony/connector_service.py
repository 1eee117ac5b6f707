"""ConnectorService: the caller's tenant's connectors over gRPC (what `callcue connectors`
does straight on the database, for clients and the console)."""

from __future__ import annotations

from typing import Any

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from callcue.core import auth, errors
from callcue.telephony.connectors import Connector, ConnectorError, ConnectorStore, Protocol
from callcue.telephony.v1 import connector_service_pb2 as pb
from callcue.telephony.v1 import connector_service_pb2_grpc

log = structlog.get_logger("callcue.telephony.connector_service")

Context = Any

_PROTOCOLS = {
    pb.CONNECTOR_PROTOCOL_TWILIO: Protocol.TWILIO,
    pb.CONNECTOR_PROTOCOL_AUDIOHOOK: Protocol.AUDIOHOOK,
    pb.CONNECTOR_PROTOCOL_FREESWITCH: Protocol.FREESWITCH,
}
_ENUMS = {protocol: value for value, protocol in _PROTOCOLS.items()}


def to_message(connector: Connector, public_url: str = "") -> pb.Connector:
    created = Timestamp()
    created.FromDatetime(connector.create_time)
    path = f"/{connector.protocol}/{connector.connector_id}"
    return pb.Connector(
        connector_id=connector.connector_id,
        protocol=_ENUMS[connector.protocol],
        display_name=connector.display_name,
        rep_channel=connector.rep_channel,
        playbook_ids=list(connector.playbook_ids),
        account_id=connector.account_id,
        create_time=created,
        path=path,
        url=f"{public_url}{path}" if public_url else "",
    )


class ConnectorService(connector_service_pb2_grpc.ConnectorServiceServicer):
    def __init__(self, store: ConnectorStore, public_url: str = "") -> None:
        self._store = store
        self._public_url = public_url

    def _message(self, connector: Connector) -> pb.Connector:
        return to_message(connector, self._public_url)

    async def _own(self, connector_id: str) -> Connector:
        connector = await self._store.get(connector_id) if connector_id else None
        if connector is None or connector.tenant_id != auth.tenant_id():
            raise errors.not_found("connector", connector_id)
        return connector

    async def CreateConnector(
        self, request: pb.CreateConnectorRequest, context: Context
    ) -> pb.CreateConnectorResponse:
        wanted = request.connector
        protocol = _PROTOCOLS.get(wanted.protocol)
        if protocol is None:
            raise errors.invalid_argument(
                "connector.protocol", "choose TWILIO, AUDIOHOOK or FREESWITCH"
            )
        try:
            connector, credentials = await self._store.create(
                auth.tenant_id(),
                protocol,
                display_name=wanted.display_name,
                rep_channel=wanted.rep_channel,
                playbook_ids=tuple(wanted.playbook_ids),
                account_id=wanted.account_id,
                auth_token=request.twilio_auth_token,
            )
        except ConnectorError as error:
            field = (
                error.field if error.field == "twilio_auth_token" else f"connector.{error.field}"
            )
            raise errors.invalid_argument(field, str(error)) from None
        log.info("connector created", connector_id=connector.connector_id, protocol=protocol.value)
        return pb.CreateConnectorResponse(
            connector=self._message(connector),
            api_key=credentials.api_key,
            client_secret=credentials.client_secret,
        )

    async def GetConnector(
        self, request: pb.GetConnectorRequest, context: Context
    ) -> pb.GetConnectorResponse:
        return pb.GetConnectorResponse(
            connector=self._message(await self._own(request.connector_id))
        )

    async def ListConnectors(
        self, request: pb.ListConnectorsRequest, context: Context
    ) -> pb.ListConnectorsResponse:
        connectors, token = await self._store.page(
            auth.tenant_id(), request.page_size, request.page_token
        )
        return pb.ListConnectorsResponse(
            connectors=[self._message(c) for c in connectors], next_page_token=token
        )

    async def DeleteConnector(
        self, request: pb.DeleteConnectorRequest, context: Context
    ) -> pb.DeleteConnectorResponse:
        connector = await self._own(request.connector_id)
        await self._store.delete(connector.connector_id)
        log.info("connector deleted", connector_id=connector.connector_id)
        return pb.DeleteConnectorResponse()
