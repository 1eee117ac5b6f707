"""PhoneConnectorService: the tenant's phone-system connectors for admins, through the
telephony service's ConnectorService."""

from __future__ import annotations

from collections.abc import Sequence

from callcue.console.access import Context, Gatekeeper
from callcue.console.backend import Backend, passed_on
from callcue.console.people import Role
from callcue.console.v1 import console_service_pb2 as pb
from callcue.core.pagination import every_page
from callcue.core.service_keys import Metadata
from callcue.telephony.v1 import connector_service_pb2 as telephony_pb


class PhoneConnectorService:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper

    async def _auth(self, ctx: Context) -> Metadata:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.ADMIN)
        return await self._backend.keys.metadata(person.tenant_id)

    async def list_phone_connectors(
        self, request: pb.ListPhoneConnectorsRequest, ctx: Context
    ) -> pb.ListPhoneConnectorsResponse:
        auth = await self._auth(ctx)

        async def fetch(token: str) -> tuple[Sequence[telephony_pb.Connector], str]:
            page = await self._backend.telephony.ListConnectors(
                telephony_pb.ListConnectorsRequest(page_size=1000, page_token=token),
                metadata=auth,
            )
            return page.connectors, page.next_page_token

        with passed_on():
            return pb.ListPhoneConnectorsResponse(connectors=await every_page(fetch))

    async def create_phone_connector(
        self, request: pb.CreatePhoneConnectorRequest, ctx: Context
    ) -> pb.CreatePhoneConnectorResponse:
        auth = await self._auth(ctx)
        with passed_on():
            created = await self._backend.telephony.CreateConnector(
                telephony_pb.CreateConnectorRequest(
                    connector=request.connector, twilio_auth_token=request.twilio_auth_token
                ),
                metadata=auth,
            )
        return pb.CreatePhoneConnectorResponse(
            connector=created.connector,
            api_key=created.api_key,
            client_secret=created.client_secret,
        )

    async def delete_phone_connector(
        self, request: pb.DeletePhoneConnectorRequest, ctx: Context
    ) -> pb.DeletePhoneConnectorResponse:
        auth = await self._auth(ctx)
        with passed_on():
            await self._backend.telephony.DeleteConnector(
                telephony_pb.DeleteConnectorRequest(connector_id=request.connector_id),
                metadata=auth,
            )
        return pb.DeletePhoneConnectorResponse()
