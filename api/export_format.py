"""How exports lay out data: stable CSV columns and streamed JSON arrays.

Metric groups and daily costs are nested and their keys depend on the data (models, users,
error types), so their CSV is long form with fixed columns: one row per number, named by
its dotted path in the JSON response (`phase_duration_ms.extraction.p95_ms`). A grouped
answer (`group_by=`) is one row per group with the model's fixed fields as columns. Alerts
are flat and get one row each with fixed columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, get_args, get_origin

import orjson
from pydantic import BaseModel

from streams.slicing import OTHER_VALUE

GROUP_COLUMNS = ("from_ms", "to_ms", "field", "value")
DAILY_COLUMNS = ("day", "field", "value")
ALERT_COLUMNS = (
    "id",
    "rule",
    "status",
    "severity",
    "scope",
    "value",
    "threshold",
    "window",
    "time_ms",
    "message",
)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) for every leaf of a JSON value, in the value's own order."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_lines(rows: Iterable[Iterable[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue().encode()


async def json_array(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """Stream `[item, item, …]` one item at a time."""
    yield b"["
    first = True
    async for item in items:
        yield (b"" if first else b",") + orjson.dumps(item, default=str)
        first = False
    yield b"]"


def scalar_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of a model's fixed scalar fields, nested models included.

    A grouped export has one CSV row per group, so its columns must be known before the
    first row: they are the fields the response model declares. Maps and lists whose keys
    depend on the data (`by_model`, `errors_by_type`) have no fixed column; the JSON export,
    or a filtered (ungrouped) CSV export, carries them."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        if not prefix and name in RANGE_FIELDS:
            continue  # the row's from_ms/to_ms
        path = f"{prefix}.{name}" if prefix else name
        kinds = [a for a in get_args(field.annotation) or (field.annotation,) if a is not NONE]
        if get_origin(field.annotation) in (dict, list):
            continue
        if len(kinds) == 1 and isinstance(kinds[0], type) and issubclass(kinds[0], BaseModel):
            out += scalar_paths(kinds[0], path)
        elif all(kind in SCALARS for kind in kinds):
            out.append(path)
    return out


NONE = type(None)
RANGE_FIELDS = ("start_ms", "end_ms")
SCALARS = (int, float, str, bool)


def grouped_rows(
    span: tuple[int, int], answer: dict[str, Any], paths: list[str]
) -> Iterator[tuple[Any, ...]]:
    """One row per group (and one for `other`): the range, the group's value, its figures."""
    parts = [(g.get("value"), g) for g in answer.get("groups", [])]
    if answer.get("other") is not None:
        parts.append((OTHER_VALUE, answer["other"]))
    for value, data in parts:
        leaves = dict(flatten(data))
        yield (*span, value, *(leaves.get(path) for path in paths))
