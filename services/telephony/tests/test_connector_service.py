"""ConnectorService over real gRPC: a tenant's own connectors only, with clear errors."""

from __future__ import annotations

import grpc
import pytest

from callcue.core.pagination import every_page
from callcue.telephony.v1 import connector_service_pb2 as pb
from callcue.telephony.v1.connector_service_pb2_grpc import ConnectorServiceStub

Stubs = tuple[ConnectorServiceStub, ConnectorServiceStub]


async def test_create_get_list_and_delete(connector_api: Stubs) -> None:
    acme, _ = connector_api
    created = await acme.CreateConnector(
        pb.CreateConnectorRequest(
            connector=pb.Connector(
                protocol=pb.CONNECTOR_PROTOCOL_AUDIOHOOK,
                display_name="Genesys",
                playbook_ids=["sales"],
            )
        )
    )
    connector = created.connector
    assert connector.connector_id.startswith("tc_") and connector.rep_channel == "internal"
    assert connector.path == f"/audiohook/{connector.connector_id}"
    assert created.api_key.startswith("cck_") and created.client_secret
    fetched = await acme.GetConnector(pb.GetConnectorRequest(connector_id=connector.connector_id))
    assert fetched.connector == connector

    for _ in range(3):
        await acme.CreateConnector(
            pb.CreateConnectorRequest(
                connector=pb.Connector(protocol=pb.CONNECTOR_PROTOCOL_FREESWITCH)
            )
        )

    async def page(token: str) -> tuple[list[pb.Connector], str]:
        reply = await acme.ListConnectors(pb.ListConnectorsRequest(page_size=2, page_token=token))
        return list(reply.connectors), reply.next_page_token

    listed = await every_page(page)
    ids = [c.connector_id for c in listed]
    assert connector.connector_id in ids and len(ids) == len(set(ids)) >= 4
    await acme.DeleteConnector(pb.DeleteConnectorRequest(connector_id=connector.connector_id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await acme.GetConnector(pb.GetConnectorRequest(connector_id=connector.connector_id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_tenants_connector_is_not_found(connector_api: Stubs) -> None:
    acme, globex = connector_api
    created = await acme.CreateConnector(
        pb.CreateConnectorRequest(connector=pb.Connector(protocol=pb.CONNECTOR_PROTOCOL_FREESWITCH))
    )
    connector_id = created.connector.connector_id
    for call in (
        globex.GetConnector(pb.GetConnectorRequest(connector_id=connector_id)),
        globex.DeleteConnector(pb.DeleteConnectorRequest(connector_id=connector_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await globex.ListConnectors(pb.ListConnectorsRequest())
    assert connector_id not in [c.connector_id for c in listed.connectors]
    await acme.GetConnector(pb.GetConnectorRequest(connector_id=connector_id))  # still there


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateConnectorRequest(connector=pb.Connector()), "connector.protocol"),
        (
            pb.CreateConnectorRequest(
                connector=pb.Connector(protocol=pb.CONNECTOR_PROTOCOL_TWILIO)
            ),
            "twilio_auth_token",
        ),
        (
            pb.CreateConnectorRequest(
                connector=pb.Connector(protocol=pb.CONNECTOR_PROTOCOL_TWILIO, rep_channel="left"),
                twilio_auth_token="t",
            ),
            "connector.rep_channel",
        ),
    ],
)
async def test_bad_requests_name_the_field(
    connector_api: Stubs, request_: pb.CreateConnectorRequest, field: str
) -> None:
    acme, _ = connector_api
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await acme.CreateConnector(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")


async def test_a_twilio_token_is_never_returned(connector_api: Stubs) -> None:
    acme, _ = connector_api
    created = await acme.CreateConnector(
        pb.CreateConnectorRequest(
            connector=pb.Connector(protocol=pb.CONNECTOR_PROTOCOL_TWILIO, account_id="AC1"),
            twilio_auth_token="tw-secret-token",
        )
    )
    assert not created.api_key and not created.client_secret
    listed = await acme.ListConnectors(pb.ListConnectorsRequest(page_size=1000))
    assert "tw-secret-token" not in str(listed) + str(created)
