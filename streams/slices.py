"""The worker's slices of a bucket: full partials per cell, bounded tables per dimension.

Service and environment form one joint *cell* key per event; a cell holds a full
`Partial`, so any filter on those two and a group-by over either is a merge of matching
cells, exact. Model and tier exist only on model calls, which a partial already keeps per
model (sums and a duration sketch per model), so a model or tier slice is a projection of
the cells (`project`), exact too. High-cardinality dimensions (user, each tag key) get a
`Table` per bucket: compact figures per value, at most K values, the rest folded into
`other` (the rule is in docs/slicing.md). Everything here is a pure function of the events
in offset order, so a replay after a crash gives the same rows.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from streams import sketches
from streams.partial import Partial

CellKey = tuple[str | None, str | None]  # service, environment
TOTAL_CELL: CellKey = (None, None)  # dead letters: no dimension

FIGURES: tuple[str, ...] = (
    "events",
    "generations",
    "completed",
    "failed",
    "canceled",
    "errors",
    "calls",
    "input_tokens",
    "output_tokens",
    "cost_nanousd",
    "unpriced_calls",
)
"""What a table keeps per value, in this order (no sketches: docs/slicing.md)."""
N_FIGURES = len(FIGURES)
EVENTS, GENERATIONS, CALLS, INPUT, OUTPUT, COST, UNPRICED = 0, 1, 6, 7, 8, 9, 10
KIND_FIGURE: dict[str, int] = {
    "generation_started": 1,
    "generation_completed": 2,
    "generation_failed": 3,
    "generation_canceled": 4,
    "error_occurred": 5,
}


def encode_cell(key: CellKey) -> str:
    return orjson.dumps(key).decode()


def decode_cell(text: str) -> CellKey:
    service, environment = orjson.loads(text)
    return (service, environment)


def add_event(row: list[int], kind: str, data: dict[str, Any]) -> None:
    """Fold one event into a table row (a list of FIGURES)."""
    row[EVENTS] += 1
    index = KIND_FIGURE.get(kind)
    if index is not None:
        row[index] += 1
    elif kind == "model_called":
        row[CALLS] += 1
        row[INPUT] += data["input_tokens"]
        row[OUTPUT] += data["output_tokens"]
        cost = data.get("cost_nanousd")
        if data.get("priced", True) and cost is not None:
            row[COST] += int(cost)
        else:
            row[UNPRICED] += 1


def add_row(target: list[int], row: list[int]) -> None:
    for i in range(N_FIGURES):
        target[i] += row[i]


def empty_row() -> list[int]:
    return [0] * N_FIGURES


BLOOM_BITS = 1 << 16  # 8 KiB per table that spilled: ~0.2 % false positives at 3,000 values
BLOOM_HASHES = 3


def bloom_positions(value: str) -> list[int]:
    """Bit positions of a value (crc32 double hashing: the same in every process, unlike
    Python's salted hash())."""
    raw = value.encode()
    h1 = zlib.crc32(raw)
    h2 = zlib.crc32(raw, 0x5BD1E995) | 1
    return [(h1 + i * h2) % BLOOM_BITS for i in range(BLOOM_HASHES)]


class Table:
    """One dimension's values in one bucket of one partition: at most `k` of them, admitted
    in the order they are first merged in while there is room; every later value goes to
    `other`, whole. So each value's figures are all in its own row or all in `other`.

    `bloom` (once something spilled) remembers which values went to `other`, so a reader can
    tell "absent here" from "maybe in other" (a false positive only makes a value inexact)."""

    __slots__ = ("bloom", "k", "other", "values")

    def __init__(self, k: int) -> None:
        self.k = k
        self.values: dict[str, list[int]] = {}
        self.other = empty_row()
        self.bloom: bytearray | None = None

    def merge(self, rows: dict[str, list[int]]) -> tuple[list[str], bool]:
        """Add a batch's rows (value → figures, in first-seen order); returns the values whose
        row changed and whether `other` did."""
        values, other = self.values, self.other
        changed = []
        spilled = False
        for value, row in rows.items():
            mine = values.get(value)
            if mine is None:
                if len(values) >= self.k:
                    add_row(other, row)
                    self._remember(value)
                    spilled = True
                    continue
                mine = values[value] = empty_row()
            add_row(mine, row)
            changed.append(value)
        return changed, spilled

    def _remember(self, value: str) -> None:
        bloom = self.bloom
        if bloom is None:
            bloom = self.bloom = bytearray(BLOOM_BITS // 8)
        for i in bloom_positions(value):
            bloom[i >> 3] |= 1 << (i & 7)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": 1, "k": self.k, "values": self.values, "other": self.other}
        if self.bloom is not None:
            out["bloom"] = base64.b64encode(self.bloom).decode()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], k: int) -> Table:
        t = cls(k)
        t.values = {v: _padded(r) for v, r in obj.get("values", {}).items()}
        t.other = _padded(obj.get("other", []))
        if "bloom" in obj:
            t.bloom = bytearray(base64.b64decode(obj["bloom"]))
        return t


def _padded(row: list[int]) -> list[int]:
    return [*row, *[0] * (N_FIGURES - len(row))][:N_FIGURES]


class Merged:
    """A dimension's table over a range, as the reader answers it: the values whose figures
    are exact (each listed by every partition-bucket table that folded something into
    `other`), and `other` holding everything else, so values + other is the exact sum of
    the events that have a value."""

    __slots__ = ("callers", "complete", "other", "values")

    def __init__(
        self, values: dict[str, list[int]], other: list[int], complete: bool, callers: int = 0
    ) -> None:
        self.values = values
        self.other = other
        self.complete = complete  # no table of the range folded anything into `other`
        self.callers = callers  # distinct values listed anywhere with a model call

    @classmethod
    def of(
        cls,
        tables: list[Table],
        limit: int | None = None,
        rank: Callable[[list[int]], int] = lambda row: row[COST],
    ) -> Merged:
        """`limit`: name only the first `limit` exact values by `rank` (descending); the
        exactness check, the costly part, then runs only as far as it must."""
        sums: dict[str, list[int]] = {}
        other = empty_row()
        spilled = []
        for table in tables:
            if table.other[EVENTS]:
                spilled.append(table)
            add_row(other, table.other)
            for value, row in table.values.items():
                mine = sums.get(value)
                if mine is None:
                    sums[value] = list(row)
                else:
                    add_row(mine, row)
        values: dict[str, list[int]] = {}
        candidates: Iterable[tuple[str, list[int]]] = sums.items()
        if limit is not None:
            candidates = sorted(sums.items(), key=lambda kv: (-rank(kv[1]), kv[0]))
        for value, row in candidates:
            if (limit is None or len(values) < limit) and absent_from_other(value, spilled):
                values[value] = row
            else:
                add_row(other, row)  # part of it may sit in some table's `other`
        callers = sum(1 for row in sums.values() if row[CALLS])
        return cls(values, other, not spilled, callers)

    def total(self) -> list[int]:
        out = list(self.other)
        for row in self.values.values():
            add_row(out, row)
        return out


def absent_from_other(value: str, tables: list[Table]) -> bool:
    """Whether none of `tables` may have folded `value` into its `other`."""
    positions: list[int] | None = None
    for t in tables:
        if value in t.values or not t.other[EVENTS]:
            continue
        bloom = t.bloom
        if bloom is None:
            return False
        if positions is None:
            positions = bloom_positions(value)
        if all(bloom[i >> 3] & (1 << (i & 7)) for i in positions):
            return False
    return True


def figures_of(p: Partial) -> list[int]:
    """A whole partial's FIGURES, the same sums a table keeps (for the `none` group)."""
    c = p.count
    row = empty_row()
    row[EVENTS] = sum(c.values())
    for kind, index in KIND_FIGURE.items():
        row[index] = c.get(kind, 0)
    for model in p.models.values():
        row[CALLS] += model["calls"]
        row[INPUT] += model["input_tokens"]
        row[OUTPUT] += model["output_tokens"]
        row[COST] += model["cost_nanousd"]
        row[UNPRICED] += model["unpriced_calls"]
    return row


def minus(a: list[int], b: list[int]) -> list[int]:
    return [x - y for x, y in zip(a, b, strict=True)]


MODEL_SERIES = "model_call_duration_ms"
Wanted = str | None | bool  # a filter value; None: events without one; False: no filter


def project(p: Partial, model: Wanted = False, tier: Wanted = False) -> Partial:
    """The part of a partial whose events match a model and a tier filter. Only model calls
    carry a model and a tier, and the partial keeps them per model (`models`, and the
    duration sketch `model_call_duration_ms:<model>`), so this is exact: the events without
    a model are kept whole when both filters allow "none", model calls per model row."""
    if model is False and tier is False:
        return p
    out = Partial()
    if model in (False, None) and tier in (False, None):
        out.merge(p)
        out.count.pop("model_called", None)
        out.models = {}
        for name in [n for n in out.sketch if n == MODEL_SERIES or n.startswith(MODEL_PREFIX)]:
            del out.sketch[name]
    for name, row in p.models.items():
        if model is not False and model != name:
            continue
        if tier is not False and tier != row["tier"]:
            continue
        out.models[name] = dict(row)
        out.count["model_called"] = out.count.get("model_called", 0) + row["calls"]
        sketch = p.sketch.get(MODEL_PREFIX + name)
        if sketch is not None:
            mine = out.sketch[MODEL_PREFIX + name] = sketches.empty()
            sketches.merge_into(mine, sketch)
            total = out.sketch.get(MODEL_SERIES)
            if total is None:
                total = out.sketch[MODEL_SERIES] = sketches.empty()
            sketches.merge_into(total, sketch)
    return out


MODEL_PREFIX = MODEL_SERIES + ":"
