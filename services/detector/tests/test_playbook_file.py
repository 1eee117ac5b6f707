from __future__ import annotations

import grpc
import pytest

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.detector import playbook_file

GOOD = b"""\
playbook_id: sales
display_name: Sales
keywords:
  - phrase: Salesforce
    aliases: [sales force]
    fuzzy_threshold: 0.85
    conditions:
      exclude_phrases: ["don't use"]
      cooldown: 30
    talking_point:
      title: "Competitor: Salesforce"
      category: competitor
      priority: 80
      body: |
        - We read Salesforce data directly.
  - display_name: Over budget
    examples: ["that's more than we budgeted"]
    semantic_threshold: 0.65
    speaker: prospect
    talking_point: {title: Budget objection, category: objection}
  - phrase: price
    inflections: true
    patterns: ['\\$\\d+']
    talking_point: {title: Pricing}
"""


def parse_error(content: bytes, content_format: int = playbook_file.YAML) -> str:
    with pytest.raises(errors.RpcError) as error:
        playbook_file.parse(content, content_format)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return error.value.message


def test_a_playbook_file_reads_into_validated_keywords() -> None:
    parsed = playbook_file.parse(GOOD)
    assert (parsed.playbook.playbook_id, parsed.playbook.display_name) == ("sales", "Sales")
    salesforce, budget, price = parsed.keywords
    assert salesforce.playbook_id == "sales" and list(salesforce.aliases) == ["sales force"]
    assert salesforce.fuzzy_threshold == pytest.approx(0.85)
    assert salesforce.conditions.cooldown.seconds == 30
    assert salesforce.talking_point.category == call_pb2.TALKING_POINT_CATEGORY_COMPETITOR
    assert budget.display_name == "Over budget" and budget.speaker == call_pb2.SPEAKER_ROLE_PROSPECT
    assert price.inflections and list(price.patterns) == [r"\$\d+"]


@pytest.mark.parametrize("content_format", [playbook_file.YAML, playbook_file.JSON])
def test_export_reads_back_the_same(content_format: int) -> None:
    parsed = playbook_file.parse(GOOD)
    written = playbook_file.dump(parsed.playbook, parsed.keywords, content_format)
    again = playbook_file.parse(written, content_format)
    assert again.playbook == parsed.playbook
    assert again.keywords == parsed.keywords


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "content: the file is empty"),
        (b"\xff\xfe", "content: not UTF-8 text"),
        (b"playbook_id: a\nkeywords: [\n", "content: line 3: not valid YAML"),
        (b"playbook_id: Sales Team\n", "playbook_id: line 1: 'Sales Team' is not a playbook id"),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: x\n    talking_point: {title: t}\n"
            b"  - phrase: y\n    colour: red\n",
            "keywords[1].colour: line 6: unknown field 'colour'",
        ),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: x\n    patterns: ['(unclosed']\n"
            b"    talking_point: {title: t}\n",
            "keywords[0].patterns[0]: line 4: not a valid RE2 regular expression",
        ),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: x\n    fuzzy_threshold: 1.5\n"
            b"    talking_point: {title: t}\n",
            "keywords[0].fuzzy_threshold: line 4: must be 0 to 1",
        ),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: ''\n    talking_point: {title: t}\n",
            "keywords[0].phrase: line 3: a keyword needs something to listen for",
        ),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: x\n    talking_point: {title: t}\n"
            b"  - phrase: X\n    talking_point: {title: u}\n",
            "keywords[1].display_name: line 5: the name 'X' is already used by keywords[0]",
        ),
        (
            b"playbook_id: a\nkeywords:\n  - phrase: x\n    talking_point:\n"
            b"      title: t\n      category: rumour\n",
            "keywords[0].talking_point.category: line 6: unknown value 'rumour'",
        ),
    ],
)
def test_errors_name_the_line_and_field(content: bytes, expected: str) -> None:
    assert parse_error(content).startswith(expected)


def test_json_syntax_errors_have_a_line() -> None:
    message = parse_error(b'{\n  "playbook_id": "a",\n  "keywords": [,]\n}', playbook_file.JSON)
    assert message.startswith("content: line 3: not valid JSON")


def test_json_semantic_errors_have_a_line() -> None:
    content = b'{\n  "playbook_id": "a",\n  "keywords": [\n    {"phrase": "x"}\n  ]\n}'
    message = parse_error(content, playbook_file.JSON)
    assert message.startswith("keywords[0].talking_point.title: line 4: must not be empty")
