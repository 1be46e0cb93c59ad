"""Each budget scope's spend in its latest cost day, held compactly: what a day budget
created mid-day starts from (streams.controller).

The controller adds every priced call's cost under every scope it belongs to (`user:<id>`
and `tag:<key>=<value>` among them), so it holds one figure per distinct user and tag value
of the day. Kept as a `{period, spend_nanousd}` dict per scope, as the changelog stores it,
that was five Python objects and ~360 bytes a scope (a dict of two fields, its own copy of
the day's string, the sum): in issue 14's soak (100,000 users) the worker's Python blocks
grew by ~21,000 a minute, most of it this (docs/architecture.md). A `{scope: nanousd}` dict
per day, the day's string shared, was still ~125 bytes a scope and the soak's largest steady
grower; each day's scopes are now packed in bytes (streams/packed.py, ~30 bytes a scope).
The figures, what `add` answers and the changelog rows (`row`) are the same as before.
Only the clock's day matters (a day budget made now starts from today's spend), so the
controller expires every earlier day at each poll (`expire`, tombstoned in the changelog):
memory holds the scopes of one day, not every user ever seen.
"""

from __future__ import annotations

from typing import Any

from streams.packed import PackedInts

FIELDS = ("period", "spend_nanousd")


class DaySpend:
    __slots__ = ("days", "extra")

    def __init__(self) -> None:
        self.days: dict[str, PackedInts] = {}  # day -> scope -> nanousd; a scope in one
        self.extra: dict[str, dict[str, Any]] = {}  # a restored row's other fields ("fired")

    def __len__(self) -> int:
        return sum(map(len, self.days.values()))

    def day_of(self, scope: str) -> str | None:
        """The latest day the scope has spend in (None: none)."""
        for day, spend in self.days.items():
            if scope in spend:
                return day
        return None

    def add(self, scope: str, day: str, nanos: int) -> bool:
        """Add to the scope's spend of `day`: a later day than the scope's starts it from 0,
        an earlier one (a late call) is ignored (returns False)."""
        spend = self.days.get(day)
        if spend is not None and spend.bump(scope, nanos):
            return True
        latest = self.day_of(scope)
        if latest is not None:
            if latest > day:
                return False
            self._drop(scope, latest)
        if spend is None:
            spend = self.days[day] = PackedInts()
        spend.add(scope, nanos)
        return True

    def row(self, scope: str) -> dict[str, Any] | None:
        """The scope's changelog row `{period, spend_nanousd}` (and any other fields a
        restored row had), or None."""
        day = self.day_of(scope)
        if day is None:
            return None
        nanos = self.days[day].get(scope)
        return {"period": day, "spend_nanousd": nanos, **self.extra.get(scope, {})}

    def restore(self, scope: str, row: dict[str, Any] | None) -> None:
        """A changelog row (None: a tombstone) replaces whatever the scope had."""
        latest = self.day_of(scope)
        if latest is not None:
            self._drop(scope, latest)
        if row is None:
            return
        day = row["period"]
        self.days.setdefault(day, PackedInts()).add(scope, row["spend_nanousd"])
        others = {k: v for k, v in row.items() if k not in FIELDS}
        if others:
            self.extra[scope] = others

    def expire(self, today: str) -> list[str]:
        """Forget every day before `today` (ISO dates compare as strings); returns the scopes
        forgotten, whose changelog rows are to be tombstoned."""
        gone: list[str] = []
        for day in [d for d in self.days if d < today]:
            for scope, _ in self.days.pop(day).items():
                gone.append(scope)
                self.extra.pop(scope, None)
        return gone

    def _drop(self, scope: str, day: str) -> None:
        spend = self.days[day]
        spend.pop(scope)
        if not spend:
            del self.days[day]
        self.extra.pop(scope, None)
