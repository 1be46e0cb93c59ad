"""Quantile sketches as plain dicts: fast to add to, merge and serialise, DDSketch-compatible.

A sketch here is the `producers.sketch.sketch_to_wire` form with `pos` held as a
``{key: count}`` dict while in memory. Bucket keys come from the same logarithmic mapping
as `producers.sketch.new_sketch()` (1 % relative accuracy), so a sketch folded here merges
exactly with the SDK's batches, and quantiles are answered by a real DDSketch.
"""

from __future__ import annotations

import math
from typing import Any

from ddsketch import DDSketch

from producers.sketch import RELATIVE_ACCURACY, new_sketch, sketch_from_wire

_MAPPING = new_sketch()._mapping
_MIN_POSITIVE: float = _MAPPING.min_possible
_MULTIPLIER: float = _MAPPING._multiplier
_OFFSET: float = _MAPPING._offset

Sketch = dict[str, Any]

# Bin keys as shared int objects: a key above 256 is otherwise an int object of its own in
# every sketch that has the bin (Python caches only -5..256), and four in five bins of the
# worker's rows are keyed above 256 (1 % bins of 10 ms to 1 day are keys 116 to 914). With
# the keys shared a bin costs its dict slot and its count only, ~30 % less; the hour and day
# rows gain bins all day as their latency tails fill (issue 14's soak, docs/architecture.md).
_KEY_LOW, _KEY_HIGH = -1024, 2048  # 10^-5 ms to beyond a year
_KEYS: tuple[int, ...] = tuple(range(_KEY_LOW, _KEY_HIGH))


def empty() -> Sketch:
    return {"count": 0, "sum": 0.0, "min": math.inf, "max": -math.inf, "zero": 0, "pos": {}}


def key_of(value: float) -> int:
    """The DDSketch bucket key of a positive value (same as the mapping's `key`)."""
    return shared_key(int(math.ceil(math.log2(value) * _MULTIPLIER) + _OFFSET))


def shared_key(k: int) -> int:
    """`k`, as the one shared int object of that key where there is one (`_KEYS`)."""
    return _KEYS[k - _KEY_LOW] if _KEY_LOW <= k < _KEY_HIGH else k


def value_of(key: int) -> float:
    """The representative value of a bucket (what a quantile in that bucket reports)."""
    return float(_MAPPING.value(key))


def add(sketch: Sketch, value: float) -> None:
    """Fold one non-negative measurement in."""
    if value > _MIN_POSITIVE:
        pos = sketch["pos"]
        k = int(math.ceil(math.log2(value) * _MULTIPLIER) + _OFFSET)  # key_of, inlined
        if _KEY_LOW <= k < _KEY_HIGH:
            k = _KEYS[k - _KEY_LOW]
        pos[k] = pos.get(k, 0) + 1
    else:
        sketch["zero"] += 1
    sketch["count"] += 1
    sketch["sum"] += value
    if value < sketch["min"]:
        sketch["min"] = value
    if value > sketch["max"]:
        sketch["max"] = value


def copy(sketch: Sketch) -> Sketch:
    """`merge_into(empty(), sketch)`, figure for figure, without the per-bin loop (bin counts
    are positive, so 0 + count is count; the sum and the bounds go through the same
    arithmetic and comparisons as a merge)."""
    if not sketch["count"]:
        return empty()
    low, high = sketch["min"], sketch["max"]
    return {
        "count": 0 + sketch["count"],
        "sum": 0.0 + sketch["sum"],
        "min": low if low < math.inf else math.inf,
        "max": high if high > -math.inf else -math.inf,
        "zero": 0 + sketch["zero"],
        "pos": dict(sketch["pos"]),
    }


def merge_into(target: Sketch, other: Sketch) -> None:
    """Add `other` to `target` (exact: bucket counts add)."""
    if not other["count"]:
        return
    pos = target["pos"]
    for k, c in other["pos"].items():
        pos[k] = pos.get(k, 0) + c
    target["zero"] += other["zero"]
    target["count"] += other["count"]
    target["sum"] += other["sum"]
    target["min"] = min(target["min"], other["min"])
    target["max"] = max(target["max"], other["max"])


def count_at_most(sketch: Sketch, limit: float) -> int:
    """Measurements whose bucket value is <= limit (exact to within one bucket, i.e. 1 %)."""
    total = int(sketch["zero"]) if limit >= 0 else 0
    for k, c in sketch["pos"].items():
        if value_of(k) <= limit:
            total += int(c)
    return total


def to_wire(sketch: Sketch) -> dict[str, Any]:
    """The `producers.sketch` wire form (JSON-safe)."""
    empty_sketch = not sketch["count"]
    return {
        "alpha": RELATIVE_ACCURACY,
        "count": sketch["count"],
        "sum": sketch["sum"],
        "min": None if empty_sketch else sketch["min"],
        "max": None if empty_sketch else sketch["max"],
        "zero": sketch["zero"],
        # sorting (key, count) tuples and then listing them is 4x faster than sorting lists
        # (every poll serialises the hot rows' sketches: the worker's costliest step)
        "pos": list(map(list, sorted(sketch["pos"].items()))),
        "neg": [],
    }


def from_wire(obj: dict[str, Any]) -> Sketch:
    """Inverse of `to_wire`; also accepts SDK sketches (negative values are not durations)."""
    count = obj.get("count") or 0
    return {
        "count": count,
        "sum": float(obj.get("sum") or 0.0),
        "min": math.inf if obj.get("min") is None else float(obj["min"]),
        "max": -math.inf if obj.get("max") is None else float(obj["max"]),
        "zero": obj.get("zero") or 0,
        "pos": {shared_key(int(k)): c for k, c in obj.get("pos", [])},
    }


def to_ddsketch(sketch: Sketch) -> DDSketch:
    return sketch_from_wire(to_wire(sketch))


def quantile(sketch: Sketch, q: float) -> float | None:
    """The q-quantile within 1 % relative error, or None for an empty sketch."""
    if not sketch["count"]:
        return None
    value = to_ddsketch(sketch).get_quantile_value(q)
    return None if value is None else float(value)
