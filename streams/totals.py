"""A bucket's whole partial, kept merged as polls arrive instead of re-merged from its cells.

Unsliced reads want each bucket's whole partial: the merge of its service x environment
cells (docs/slicing.md). Merging every changed bucket's cells before each Redis snapshot cost
the high-cardinality worker a sixth of its time (6 cells per bucket, rows with full
sketches), so the worker adds each poll's cell partials to a running total instead.

The running total must be the same figures a merge of the committed cells gives, whatever
the polls were and across a restore. Integer figures (counts, money, tokens, sketch bins,
min and max) add exactly in any order. Float sums (a sketch's `sum`, quality sums such as
`confidence_sum`) round differently in another order, and a model's `tier` is the first one
merged, so `settle` re-derives those few from the cells in key order, the order
`merge_cells` uses: the written total equals `merge_cells` of the cells, figure for figure
(tests/unit/test_bucket_totals.py). A restored worker has no running totals: it builds each
from the stored cells when a poll first touches the bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streams.partial import QUALITY_FIELDS, QUALITY_SET, Partial


def merge_cells(cells: Iterable[Partial]) -> Partial:
    """The whole partial of a bucket: its cells merged in key order."""
    total = Partial()
    for cell in cells:
        total.merge(cell)
    return total


class BucketTotal:
    """The cell rows a bucket has, and their running merge once there are two or more (a
    bucket with one cell is that cell: its own bytes are the total)."""

    __slots__ = ("cells", "total")

    def __init__(self, cells: set[str], total: Partial | None) -> None:
        self.cells = cells  # row keys of the bucket's cells, committed or in this poll
        self.total = total

    def add(self, key: str, added: Partial, row_of: Callable[[str], Partial]) -> None:
        """`added` was just merged into the cell row `key`; `row_of` gives a cell's row as
        it is now (this poll's additions included)."""
        if self.total is not None:
            self.cells.add(key)
            self.total.merge(added)
            return
        self.cells.add(key)
        if len(self.cells) > 1:  # a second cell: from now on the total is kept apart
            self.total = merge_cells(row_of(k) for k in sorted(self.cells))


def settle(total: Partial, cells: list[Partial]) -> Partial:
    """Set the order-dependent figures of a running total (float sums, model tiers) to
    what merging `cells` (in key order) gives; returns `total`."""
    sums: dict[str, float] = {}
    quality: dict[str, float] = dict.fromkeys(QUALITY_FIELDS, 0)
    tiers: dict[str, str | None] = {}
    for cell in cells:
        for name, sketch in cell.sketch.items():
            if sketch["count"]:
                sums[name] = sums.get(name, 0.0) + sketch["sum"]
        for field, value in cell.quality.items():
            if value and field in QUALITY_SET:
                quality[field] += value
        for model, row in cell.models.items():
            if tiers.get(model) is None:
                tiers[model] = row["tier"]
    for name, sketch in total.sketch.items():
        sketch["sum"] = sums.get(name, 0.0)
    total.quality = quality
    for model, row in total.models.items():
        row["tier"] = tiers.get(model)
    return total
