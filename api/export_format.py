"""How exports lay out data: stable CSV columns and streamed JSON arrays.

Metric groups and daily costs are nested and their keys depend on the data (models, users,
error types), so their CSV is long form with fixed columns: one row per number, named by
its dotted path in the JSON response (`phase_duration_ms.extraction.p95_ms`). Alerts are
flat and get one row each with fixed columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import orjson

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
