"""Playbook files: one playbook and its keywords as YAML or JSON, read and written.

Field names are the protos' (snake_case); enums are written as their short lower-case
names ("competitor", "rep") and durations as seconds. Every error names the line and
the field, for example ``line 14: keywords[2].patterns[0]: not a valid RE2 ...``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.detector.keywords import WRITABLE_FIELDS, validate
from callcue.detector.playbooks import validate_playbook
from callcue.detector.v1 import detector_service_pb2 as pb

T = TypeVar("T")
YAML, JSON = pb.PLAYBOOK_FORMAT_YAML, pb.PLAYBOOK_FORMAT_JSON
MAX_KEYWORDS = 10_000
_SPEAKERS = {
    "anyone": call_pb2.SPEAKER_ROLE_UNSPECIFIED,
    "rep": call_pb2.SPEAKER_ROLE_REP,
    "prospect": call_pb2.SPEAKER_ROLE_PROSPECT,
}
_CATEGORIES = {
    name.removeprefix("TALKING_POINT_CATEGORY_").lower(): value
    for name, value in call_pb2.TalkingPointCategory.items()
    if value
}
_PLAYBOOK_KEYS = ("playbook_id", "display_name", "description", "keywords")
# A file's keyword has the fields an update may change, less the playbook it is in.
_KEYWORD_KEYS = tuple(name for name in WRITABLE_FIELDS if name != "playbook_id")
_CONDITION_KEYS = ("cooldown", "max_per_call", "exclude_phrases", "active_from", "active_until")
_POINT_KEYS = ("title", "body", "links", "category", "priority")


@dataclass(frozen=True)
class PlaybookFile:
    playbook: pb.Playbook
    keywords: list[pb.Keyword]


class _Reader:
    """Values of a parsed document by path, with the line each came from."""

    def __init__(self, lines: dict[str, int]) -> None:
        self.lines = lines

    def error(self, path: str, message: str) -> errors.RpcError:
        return errors.invalid_argument(path or "content", f"line {self.line(path)}: {message}")

    def line(self, path: str) -> int:
        while path and path not in self.lines:
            path = path[: max(path.rfind("."), path.rfind("["), 0)]
        return self.lines.get(path, 1)

    def mapping(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping with {', '.join(known)}")
        for key in value:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                raise self.error(where, f"unknown field {key!r}; known: {', '.join(known)}")
        return value

    def text(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(path, "expected text")
        return str(value)

    def texts(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise self.error(path, "expected a list of text")
        return [self.text(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def number(self, value: Any, path: str, kind: Callable[[Any], Any] = float) -> Any:
        if value is None:
            return kind(0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, "expected a number")
        if kind is int and value != int(value):
            raise self.error(path, "expected a whole number")
        return kind(value)

    def flag(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(path, "expected true or false")
        return value

    def choice(self, value: Any, path: str, choices: Mapping[str, T], default: str) -> T:
        name = self.text(value, path).strip().lower() or default
        if name not in choices:
            raise self.error(path, f"unknown value {name!r}; one of {', '.join(choices)}")
        return choices[name]

    def seconds(self, value: Any, path: str) -> duration_pb2.Duration:
        duration = duration_pb2.Duration()
        duration.FromNanoseconds(int(self.number(value, path) * 1e9))
        return duration


def parse(content: bytes, content_format: int = YAML) -> PlaybookFile:
    """The playbook in a file, validated, or INVALID_ARGUMENT with line and field."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise errors.invalid_argument(
            "content", f"not UTF-8 text (byte {error.start} is invalid)"
        ) from None
    if not text.strip():
        raise errors.invalid_argument("content", "the file is empty")
    if content_format == JSON:
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise errors.invalid_argument(
                "content", f"line {error.lineno}: not valid JSON: {error.msg}"
            ) from None
    lines: dict[str, int] = {}
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            document = _construct(loader, node, "", lines) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        raise errors.invalid_argument(
            "content", f"line {line}: not valid YAML: {error.problem or error.context}"
        ) from None
    except yaml.YAMLError as error:
        raise errors.invalid_argument("content", f"not valid YAML: {error}") from None
    return _playbook_file(_Reader(lines), document)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: str, lines: dict[str, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node))
            result[key] = _construct(loader, value_node, f"{path}.{key}" if path else key, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, f"{path}[{index}]", lines)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node)


def _playbook_file(read: _Reader, document: Any) -> PlaybookFile:
    top = read.mapping(document, "", _PLAYBOOK_KEYS)
    playbook = validate_playbook(
        pb.Playbook(
            playbook_id=read.text(top.get("playbook_id"), "playbook_id"),
            display_name=read.text(top.get("display_name"), "display_name"),
            description=read.text(top.get("description"), "description"),
        ),
        on_error=read.error,
    )
    entries = top.get("keywords") or []
    if not isinstance(entries, list):
        raise read.error("keywords", "expected a list of keywords")
    if len(entries) > MAX_KEYWORDS:
        raise read.error("keywords", f"at most {MAX_KEYWORDS} keywords in one playbook")
    keywords: list[pb.Keyword] = []
    names: dict[str, int] = {}
    for index, entry in enumerate(entries):
        path = f"keywords[{index}]"
        keyword = _keyword(read, entry, path)
        keyword.playbook_id = playbook.playbook_id
        try:
            keyword = validate(keyword, field=path)
        except errors.RpcError as error:
            raise _with_line(read, error) from None
        name = keyword.display_name.casefold()
        if name in names:
            raise read.error(
                f"{path}.display_name",
                f"the name {keyword.display_name!r} is already used by keywords[{names[name]}]",
            )
        names[name] = index
        keywords.append(keyword)
    return PlaybookFile(playbook, keywords)


def _keyword(read: _Reader, entry: Any, path: str) -> pb.Keyword:
    values = read.mapping(entry, path, _KEYWORD_KEYS)
    point = read.mapping(values.get("talking_point") or {}, f"{path}.talking_point", _POINT_KEYS)
    at_point = f"{path}.talking_point"
    conditions = read.mapping(values.get("conditions") or {}, f"{path}.conditions", _CONDITION_KEYS)
    at_conditions = f"{path}.conditions"
    return pb.Keyword(
        display_name=read.text(values.get("display_name"), f"{path}.display_name"),
        phrase=read.text(values.get("phrase"), f"{path}.phrase"),
        aliases=read.texts(values.get("aliases"), f"{path}.aliases"),
        speaker=read.choice(values.get("speaker"), f"{path}.speaker", _SPEAKERS, "anyone"),
        inflections=read.flag(values.get("inflections"), f"{path}.inflections"),
        fuzzy_threshold=read.number(values.get("fuzzy_threshold"), f"{path}.fuzzy_threshold"),
        phonetic=read.flag(values.get("phonetic"), f"{path}.phonetic"),
        patterns=read.texts(values.get("patterns"), f"{path}.patterns"),
        examples=read.texts(values.get("examples"), f"{path}.examples"),
        semantic_threshold=read.number(
            values.get("semantic_threshold"), f"{path}.semantic_threshold"
        ),
        conditions=pb.KeywordConditions(
            cooldown=read.seconds(conditions.get("cooldown"), f"{at_conditions}.cooldown"),
            max_per_call=read.number(
                conditions.get("max_per_call"), f"{at_conditions}.max_per_call", int
            ),
            exclude_phrases=read.texts(
                conditions.get("exclude_phrases"), f"{at_conditions}.exclude_phrases"
            ),
            active_from=read.seconds(conditions.get("active_from"), f"{at_conditions}.active_from"),
            active_until=read.seconds(
                conditions.get("active_until"), f"{at_conditions}.active_until"
            ),
        ),
        talking_point=call_pb2.TalkingPoint(
            title=read.text(point.get("title"), f"{at_point}.title"),
            body=read.text(point.get("body"), f"{at_point}.body"),
            links=read.texts(point.get("links"), f"{at_point}.links"),
            category=read.choice(
                point.get("category"), f"{at_point}.category", _CATEGORIES, "other"
            ),
            priority=read.number(point.get("priority"), f"{at_point}.priority", int),
        ),
    )


def _with_line(read: _Reader, error: errors.RpcError) -> errors.RpcError:
    for detail in error.details:
        if isinstance(detail, error_details_pb2.BadRequest) and detail.field_violations:
            violation = detail.field_violations[0]
            return read.error(violation.field, violation.description)
    return error


def dump(playbook: pb.Playbook, keywords: list[pb.Keyword], content_format: int = YAML) -> bytes:
    """The file ``parse`` reads back into the same playbook and keywords."""
    document: dict[str, Any] = {"playbook_id": playbook.playbook_id}
    if playbook.display_name:
        document["display_name"] = playbook.display_name
    if playbook.description:
        document["description"] = playbook.description
    document["keywords"] = [_keyword_document(keyword) for keyword in keywords]
    if content_format == JSON:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    return yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    ).encode()


def _keyword_document(keyword: pb.Keyword) -> dict[str, Any]:
    speakers = {value: name for name, value in _SPEAKERS.items()}
    categories = {value: name for name, value in _CATEGORIES.items()}
    entry: dict[str, Any] = {}
    if keyword.display_name != (keyword.phrase or keyword.talking_point.title):
        entry["display_name"] = keyword.display_name
    optional: dict[str, Any] = {
        "phrase": keyword.phrase,
        "aliases": list(keyword.aliases),
        "speaker": speakers.get(keyword.speaker, "anyone") if keyword.speaker else "",
        "inflections": keyword.inflections,
        "fuzzy_threshold": round(keyword.fuzzy_threshold, 4),
        "phonetic": keyword.phonetic,
        "patterns": list(keyword.patterns),
        "examples": list(keyword.examples),
        "semantic_threshold": round(keyword.semantic_threshold, 4),
    }
    entry.update({key: value for key, value in optional.items() if value})
    conditions = keyword.conditions
    condition_values: dict[str, Any] = {
        "cooldown": conditions.cooldown.ToNanoseconds() / 1e9,
        "max_per_call": conditions.max_per_call,
        "exclude_phrases": list(conditions.exclude_phrases),
        "active_from": conditions.active_from.ToNanoseconds() / 1e9,
        "active_until": conditions.active_until.ToNanoseconds() / 1e9,
    }
    if any(condition_values.values()):
        entry["conditions"] = {key: value for key, value in condition_values.items() if value}
    point = keyword.talking_point
    entry["talking_point"] = {
        key: value
        for key, value in {
            "title": point.title,
            "category": categories.get(point.category, ""),
            "priority": point.priority,
            "body": point.body,
            "links": list(point.links),
        }.items()
        if value
    }
    return entry
