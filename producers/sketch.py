"""Mergeable quantile sketches (DDSketch, 1 % relative accuracy) and their wire form.

A DDSketch answers any quantile q with a value v' such that |v' - v| <= alpha * v for the
true q-quantile v (alpha = RELATIVE_ACCURACY). Sketches with the same alpha merge exactly,
so per-process, per-partition and per-minute sketches can be combined in any order.
"""

from __future__ import annotations

import math
from typing import Any

from ddsketch import DDSketch

RELATIVE_ACCURACY = 0.01


def new_sketch() -> DDSketch:
    return DDSketch(relative_accuracy=RELATIVE_ACCURACY)


def _store_to_wire(store: Any) -> list[list[float]]:
    base = int(store.offset)
    return [[base + i, c] for i, c in enumerate(store.bins) if c]


def sketch_to_wire(sketch: DDSketch) -> dict[str, Any]:
    """A compact JSON-able form: populated bins only, as [key, count] pairs."""
    empty = sketch.count == 0
    return {
        "alpha": RELATIVE_ACCURACY,
        "count": sketch.count,
        "sum": sketch.sum,
        "min": None if empty else sketch._min,
        "max": None if empty else sketch._max,
        "zero": sketch._zero_count,
        "pos": _store_to_wire(sketch._store),
        "neg": _store_to_wire(sketch._negative_store),
    }


class SketchFormatError(ValueError):
    """A sketch on the wire is malformed or uses another accuracy."""


def sketch_from_wire(obj: Any) -> DDSketch:
    """Rebuild a sketch from `sketch_to_wire` output, validating every bin."""
    if not isinstance(obj, dict):
        raise SketchFormatError("sketch must be a JSON object")
    if obj.get("alpha") != RELATIVE_ACCURACY:
        raise SketchFormatError(
            f"sketch accuracy {obj.get('alpha')!r} differs from {RELATIVE_ACCURACY}; cannot merge"
        )
    sketch = new_sketch()
    total = 0.0
    for name, store in (("pos", sketch._store), ("neg", sketch._negative_store)):
        bins = obj.get(name, [])
        if not isinstance(bins, list):
            raise SketchFormatError(f"sketch '{name}' must be a list of [key, count] pairs")
        for pair in bins:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)):
                raise SketchFormatError(f"sketch '{name}' bin {pair!r} is not [int key, count]")
            count = pair[1]
            if not _positive_finite(count):
                raise SketchFormatError(f"sketch '{name}' bin count {count!r} is not positive")
            store.add(pair[0], float(count))
            total += count
    zero = obj.get("zero", 0)
    if not (_positive_finite(zero) or zero == 0):
        raise SketchFormatError(f"sketch zero count {zero!r} is invalid")
    total += zero
    sketch._zero_count = float(zero)
    sketch._count = float(total)
    if total:
        for field in ("min", "max", "sum"):
            if not _finite(obj.get(field)):
                raise SketchFormatError(f"sketch '{field}' must be a finite number")
        sketch._min, sketch._max, sketch._sum = (
            float(obj["min"]),
            float(obj["max"]),
            float(obj["sum"]),
        )
    return sketch


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_finite(value: Any) -> bool:
    return _finite(value) and value > 0
