"""Text that cannot be stored: PostgreSQL text refuses NUL characters, so a request that
carries one is refused up front, naming the field, instead of failing in the database."""

from __future__ import annotations

from google.protobuf.message import Message

from callcue.core import errors


def reject_nul(message: Message, prefix: str = "") -> None:
    """INVALID_ARGUMENT naming the first string field (at any depth) holding a NUL."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check(f"{name}[{key!r}]", key)
                if isinstance(item, Message):
                    reject_nul(item, f"{name}[{key!r}].")
                else:
                    _check(f"{name}[{key!r}]", item)
        elif field.is_repeated:
            for index, item in enumerate(value):
                if isinstance(item, Message):
                    reject_nul(item, f"{name}[{index}].")
                else:
                    _check(f"{name}[{index}]", item)
        elif isinstance(value, Message):
            reject_nul(value, f"{name}.")
        else:
            _check(name, value)


def _check(field: str, value: object) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise errors.invalid_argument(field, "must not contain NUL (\\x00) characters")
