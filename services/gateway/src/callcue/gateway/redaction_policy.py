"""What a tenant's transcripts keep of the personal data said on its calls: for each kind,
masked (``[PHONE ****4567]``), dropped (the words go), or kept. Every kind is masked unless
the tenant says otherwise; payment cards and social security numbers are never kept."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from callcue.core import errors
from callcue.gateway.v1 import gateway_service_pb2 as pb


class Kind(enum.Enum):
    CARD = "payment_card"
    SSN = "ssn"
    BANK_ACCOUNT = "bank_account"
    PHONE_NUMBER = "phone_number"
    EMAIL = "email"
    DATE_OF_BIRTH = "date_of_birth"
    STREET_ADDRESS = "street_address"
    # A long run of digits that is none of the above: always masked.
    NUMBER = "number"


class Action(enum.Enum):
    MASK = "mask"
    DROP = "drop"
    KEEP = "keep"


# Kinds a tenant chooses for; NUMBER is not one.
CHOSEN = tuple(kind for kind in Kind if kind is not Kind.NUMBER)
NEVER_KEPT = (Kind.CARD, Kind.SSN)


class PolicyError(ValueError):
    """A policy that may not be: a card or SSN kept."""


def check(kind: Kind, action: Action) -> None:
    if kind in NEVER_KEPT and action is Action.KEEP:
        raise PolicyError(f"{kind.value} is always redacted: mask or drop it")


@dataclass(frozen=True)
class Policy:
    actions: Mapping[Kind, Action] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, action in self.actions.items():
            check(kind, action)

    def action(self, kind: Kind) -> Action:
        if kind is Kind.NUMBER:
            return Action.MASK
        return self.actions.get(kind, Action.MASK)

    def every(self) -> dict[Kind, Action]:
        return {kind: self.action(kind) for kind in CHOSEN}


class PolicyStore:
    """Each tenant's policy in PostgreSQL (the gateway's ``redaction_policies`` table)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def get(self, tenant_id: str) -> Policy:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT kind, action FROM redaction_policies WHERE tenant_id = %s", (tenant_id,)
            )
            rows = await cursor.fetchall()
        return Policy({Kind(kind): Action(action) for kind, action in rows})

    async def update(self, tenant_id: str, changes: Mapping[Kind, Action]) -> Policy:
        """The tenant's policy with ``changes`` made, all of them or (if one may not be)
        none."""
        current = await self.get(tenant_id)
        updated = Policy({**current.actions, **changes})  # raises PolicyError before writing
        async with self._pool.connection() as conn, conn.transaction():
            for kind, action in changes.items():
                await conn.execute(
                    "INSERT INTO redaction_policies (tenant_id, kind, action) VALUES (%s, %s, %s) "
                    "ON CONFLICT (tenant_id, kind) DO UPDATE SET action = excluded.action",
                    (tenant_id, kind.value, action.value),
                )
        return updated


_KINDS = {
    pb.PII_KIND_PAYMENT_CARD: Kind.CARD,
    pb.PII_KIND_SSN: Kind.SSN,
    pb.PII_KIND_BANK_ACCOUNT: Kind.BANK_ACCOUNT,
    pb.PII_KIND_PHONE_NUMBER: Kind.PHONE_NUMBER,
    pb.PII_KIND_EMAIL: Kind.EMAIL,
    pb.PII_KIND_DATE_OF_BIRTH: Kind.DATE_OF_BIRTH,
    pb.PII_KIND_STREET_ADDRESS: Kind.STREET_ADDRESS,
}
_ACTIONS = {
    pb.REDACTION_ACTION_MASK: Action.MASK,
    pb.REDACTION_ACTION_DROP: Action.DROP,
    pb.REDACTION_ACTION_KEEP: Action.KEEP,
}


def to_proto(policy: Policy) -> pb.RedactionPolicy:
    kinds = {kind: number for number, kind in _KINDS.items()}
    actions = {action: number for number, action in _ACTIONS.items()}
    return pb.RedactionPolicy(
        rules=[
            pb.RedactionRule(kind=kinds[kind], action=actions[action])
            for kind, action in policy.every().items()
        ]
    )


def changes_from(rules: Sequence[pb.RedactionRule]) -> dict[Kind, Action]:
    """The changes the rules ask for, or INVALID_ARGUMENT naming the rule at fault."""
    changes: dict[Kind, Action] = {}
    for index, rule in enumerate(rules):
        kind, action = _KINDS.get(rule.kind), _ACTIONS.get(rule.action)
        if kind is None:
            raise errors.invalid_argument(f"rules[{index}].kind", "must name a kind of data")
        if action is None:
            raise errors.invalid_argument(f"rules[{index}].action", "must be MASK, DROP or KEEP")
        if kind in changes:
            raise errors.invalid_argument(f"rules[{index}].kind", f"{kind.value} is named twice")
        try:
            check(kind, action)
        except PolicyError as refused:
            raise errors.invalid_argument(f"rules[{index}].action", str(refused)) from None
        changes[kind] = action
    if not changes:
        raise errors.invalid_argument("rules", "name at least one kind to change")
    return changes
