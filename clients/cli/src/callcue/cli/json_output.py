"""--json output: protobuf messages as one line of JSON each, with the protos' field names."""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.protobuf.message import Message


def as_json(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))
