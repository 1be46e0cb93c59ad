"""`MetricsReader`: the API's only way into the worker's Redis snapshots.

Partials are stored per source partition and per bucket (docs/snapshots.md); the reader
fetches the buckets a range needs in one pipeline, merges them and derives the views of
streams.views. Ranges are [start_ms, end_ms) aligned to whole minutes (a bucket is in the
range when its minute starts in it); long ranges use hourly rollups for whole hours.

Sliced reads (`where=`, `group_by=`, docs/slicing.md) answer from the slice rows: cells
(service, environment, model, tier: full partials, exact for any combination) and the
bounded tables of user and each tag key (compact figures; a value is answered only where
its figures are exact, everything else is `other`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from streams import keys, views
from streams.money import usd
from streams.partial import Partial, Targets
from streams.slices import (
    CALLS,
    COST,
    EVENTS,
    GENERATIONS,
    INPUT,
    OUTPUT,
    CellKey,
    Merged,
    Table,
    Wanted,
    absent_from_other,
    add_row,
    decode_cell,
    empty_row,
    figures_of,
    minus,
    project,
)
from streams.slicing import NONE_VALUE, OTHER_VALUE, UnsupportedSlice, Where, group_dimension

if TYPE_CHECKING:
    import redis.asyncio

HOURLY_FROM_MS = 3 * keys.HOUR_MS  # ranges longer than this read whole hours from rollups
CELL_DIMENSIONS = ("service", "environment", "model", "tier")  # index in a CellKey
TABLE_EXTRA = ("#other", "#bloom")  # a table's fields besides `<partition>|<value>`
SERIES_GROUPS = 10  # a grouped time series shows this many groups plus `other`
GROUPS = 1000  # a table group-by names at most this many values (the rest is `other`)
Bucket = tuple[str, int | str]  # (level name, bucket start or day)
MakeView = Callable[[Partial, Merged | None], dict[str, Any]]


@dataclass(frozen=True)
class Plan:
    """How a filter + group-by is answered: from the totals, the cells or one table."""

    mode: str  # "total" | "cells" | "value" | "table"
    match: tuple[Wanted, ...] = ()  # service, env, model, tier: value, None (=missing), False
    dimension: str | None = None  # table dimension ("user", "tag:<key>") for value/table
    value: str | None = None  # the filtered value (mode "value")
    group_index: int | None = None  # cell dimension grouped by (mode "cells")


def plan(where: Where | None, group_by: str | None) -> Plan:
    """Which rows answer `where` + `group_by` exactly, or UnsupportedSlice saying why not."""
    w = where or Where()
    cell_filter = (w.service, w.environment, w.model, w.tier)
    match = tuple(False if v is None else (None if v == NONE_VALUE else v) for v in cell_filter)
    has_cells = any(v is not None for v in cell_filter)
    values = ([("user", w.user)] if w.user is not None else []) + (
        [(f"tag:{w.tag[0]}", w.tag[1])] if w.tag is not None else []
    )
    if len(values) > 1:
        raise UnsupportedSlice("user= and tag= cannot be combined (separate bounded tables)")
    if values and has_cells:
        raise UnsupportedSlice(
            "user= and tag= cannot be combined with service/environment/model/tier filters"
        )
    if group_by is None:
        if values:
            return Plan("value", dimension=values[0][0], value=values[0][1])
        return Plan("cells", match) if has_cells else Plan("total")
    name, key = group_dimension(group_by)
    if name in CELL_DIMENSIONS:
        if values:
            raise UnsupportedSlice(f"group_by={group_by} cannot be combined with user=/tag=")
        return Plan("cells", match, group_index=CELL_DIMENSIONS.index(name))
    if values or has_cells:
        raise UnsupportedSlice(f"group_by={group_by} takes no filters (one bounded table)")
    return Plan("table", dimension="user" if name == "user" else f"tag:{key}")


class MetricsReader:
    def __init__(
        self, redis: redis.asyncio.Redis, prefix: str = "genpulse", targets: Targets | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.targets = targets or Targets()

    # -- fetching -------------------------------------------------------------------------

    def _buckets(self, start_ms: int, end_ms: int) -> list[Bucket]:
        start = keys.floor(start_ms, keys.MINUTE_MS)
        if start_ms % keys.MINUTE_MS:
            start += keys.MINUTE_MS

        def minutes(a: int, b: int) -> list[Bucket]:
            return [("minute", m) for m in range(a, b, keys.MINUTE_MS)]

        if end_ms - start <= HOURLY_FROM_MS:
            return minutes(start, end_ms)
        first_hour = -(-start // keys.HOUR_MS) * keys.HOUR_MS
        last_hour = keys.floor(end_ms, keys.HOUR_MS)
        out = minutes(start, first_hour)
        out += [("hour", h) for h in range(first_hour, last_hour, keys.HOUR_MS)]
        out += minutes(last_hour, end_ms)
        return out

    def _total_key(self, bucket: Bucket) -> str:
        return f"{self.prefix}:snap:{bucket[0]}:{bucket[1]}"

    async def _hashes(self, names: list[str], atomic: bool = False) -> list[dict[bytes, bytes]]:
        """HGETALL of each name; `atomic`: in one MULTI, so they come from one snapshot write
        (the writer's are MULTI too)."""
        if not names:
            return []
        async with self.redis.pipeline(transaction=atomic) as pipe:
            for name in names:
                pipe.hgetall(name)
            return list(await pipe.execute())

    async def _merged(self, names: list[str]) -> Partial:
        total = Partial()
        for fields in await self._hashes(names):
            for blob in fields.values():
                total.merge(Partial.from_json(orjson.loads(blob)))
        return total

    async def _range(self, start_ms: int, end_ms: int) -> Partial:
        return await self._merged([self._total_key(b) for b in self._buckets(start_ms, end_ms)])

    async def _cells(self, buckets: list[Bucket], match: tuple[Any, ...]) -> dict[CellKey, Partial]:
        """The matching cells of the buckets, each merged over partitions and buckets."""
        names = [keys.slice_cells(self.prefix, level, b) for level, b in buckets]
        out: dict[CellKey, Partial] = {}
        for fields in await self._hashes(names):
            for name, blob in fields.items():
                cell = decode_cell(name.decode().partition("|")[2])
                if any(  # service, environment; model and tier are projections
                    want is not False and want != got
                    for want, got in zip(match[:2], cell, strict=True)
                ):
                    continue
                p = Partial.from_json(orjson.loads(blob))
                mine = out.get(cell)
                if mine is None:
                    out[cell] = p
                else:
                    mine.merge(p)
        return out

    async def _tables(
        self, buckets: list[Bucket], dimension: str, with_totals: bool = False
    ) -> tuple[list[Table], Partial]:
        """Every partition's table of `dimension` in each bucket (and, read in the same MULTI
        when asked, the buckets' merged totals)."""
        names = [keys.slice_table(self.prefix, level, b, dimension) for level, b in buckets]
        totals = [self._total_key(b) for b in buckets] if with_totals else []
        hashes = await self._hashes(names + totals, atomic=with_totals)
        total = Partial()
        for fields in hashes[len(names) :]:
            for blob in fields.values():
                total.merge(Partial.from_json(orjson.loads(blob)))
        tables: list[Table] = []
        for fields in hashes[: len(names)]:
            by_partition: dict[str, Table] = {}
            for name, blob in fields.items():
                text = name.decode()
                part, bar, value = text.partition("|")
                if not bar:
                    part, _, value = text.partition("#")
                table = by_partition.get(part)
                if table is None:
                    table = by_partition[part] = Table(0)
                if bar:
                    table.values[value] = orjson.loads(blob)
                elif value == "other":
                    table.other = orjson.loads(blob)
                else:
                    table.bloom = bytearray(blob)
            tables.extend(by_partition.values())
        return tables, total

    async def _value_tables(self, buckets: list[Bucket], dimension: str, value: str) -> list[Table]:
        """Only `value` and `other` of each partition's table (HMGET, not the whole table)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hkeys(self._total_key(bucket))
            partitions = [
                [f.decode() for f in fields if f.startswith(b"events:")]
                for fields in await pipe.execute()
            ]
        names = [keys.slice_table(self.prefix, level, b, dimension) for level, b in buckets]
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, parts in zip(names, partitions, strict=True):
                if parts:
                    fields = [
                        f"{p}{suffix}" for p in parts for suffix in (f"|{value}", *TABLE_EXTRA)
                    ]
                    pipe.hmget(name, fields)
            answers = iter(await pipe.execute())
        tables = []
        for parts in partitions:
            if not parts:
                continue
            got = next(answers)
            for i in range(len(parts)):
                row, other, bloom = got[3 * i : 3 * i + 3]
                table = Table(0)
                if row is not None:
                    table.values[value] = orjson.loads(row)
                if other is not None:
                    table.other = orjson.loads(other)
                if bloom is not None:
                    table.bloom = bytearray(bloom)
                tables.append(table)
        return tables

    async def _value_row(self, buckets: list[Bucket], dimension: str, value: str) -> list[int]:
        """One value's exact figures over the buckets, or UnsupportedSlice when part of them
        may sit in some table's `other`."""
        if value == NONE_VALUE:
            merged, none = await self._grouped(buckets, dimension)
            return none
        tables = await self._value_tables(buckets, dimension, value)
        merged = Merged.of(tables)
        if value in merged.values:
            return merged.values[value]
        if absent_from_other(value, tables):
            return empty_row()
        raise UnsupportedSlice(
            f"{dimension}={value!r} fell out of the top-K (GENPULSE_SLICE_TOP_K) in part of "
            "this range, so its figures are not exact there; ask for a shorter range"
        )

    async def _grouped(
        self, buckets: list[Bucket], dimension: str, by_cost: bool = False
    ) -> tuple[Merged, list[int]]:
        """A dimension's table over the buckets (its first GROUPS exact values by events, or
        by cost) and the figures of events without a value."""
        tables, total = await self._tables(buckets, dimension, with_totals=True)
        key = COST if by_cost else EVENTS
        merged = Merged.of(tables, GROUPS, lambda row: row[key])
        return merged, minus(figures_of(total), merged.total())

    async def _users(self, buckets: list[Bucket], limit: int) -> Merged:
        return Merged.of((await self._tables(buckets, "user"))[0], limit)

    async def _live(self) -> dict[str, Any]:
        fields = await self.redis.hgetall(keys.live(self.prefix))
        return views.merge_live([orjson.loads(v) for v in fields.values()])

    # -- answering a sliced view ----------------------------------------------------------

    async def _answer(
        self,
        view: str,
        start_ms: int,
        end_ms: int,
        where: Where | None,
        group_by: str | None,
        make: MakeView,
        buckets: list[Bucket] | None = None,
    ) -> dict[str, Any]:
        how = plan(where, group_by)
        if buckets is None:
            buckets = self._buckets(start_ms, end_ms)
        head = {"start_ms": start_ms, "end_ms": end_ms}
        if how.mode == "total":
            p = await self._merged([self._total_key(b) for b in buckets])
            users = None
            if view in ("costs", "summary"):
                users = await self._users(buckets, 100 if view == "costs" else 0)
            return {**head, **make(p, users)}
        if how.mode == "value":
            assert how.dimension is not None and how.value is not None
            row = await self._value_row(buckets, how.dimension, how.value)
            return {**head, **self._compact(view, how.dimension, how.value, row, make)}
        if how.mode == "cells":
            cells = await self._cells(buckets, how.match)
            if how.group_index is None:
                return {**head, **make(_filtered(cells, how.match), None)}
            by_value = _group_cells(cells, how.match, how.group_index)
            ranked = sorted(by_value.items(), key=lambda kv: _rank(view, figures_of(kv[1]), kv[0]))
            groups = [{"value": v, **make(p, None)} for v, p in ranked]
            return {**head, "group_by": group_by, "groups": groups, "other": None}
        assert how.dimension is not None
        merged, none = await self._grouped(buckets, how.dimension, view == "costs")
        rows = list(merged.values.items())
        if none[EVENTS]:
            rows.append((NONE_VALUE, none))
        rows.sort(key=lambda kv: _rank(view, kv[1], kv[0]))
        groups = [
            {"value": v, **self._compact(view, how.dimension, v, row, make)} for v, row in rows
        ]
        other = None
        if merged.other[EVENTS]:
            other = self._compact(view, how.dimension, OTHER_VALUE, merged.other, make)
        return {**head, "group_by": group_by, "groups": groups, "other": other}

    @staticmethod
    def _compact(
        view: str, dimension: str, value: str, row: list[int], make: MakeView
    ) -> dict[str, Any]:
        one_user = dimension == "user" and value not in (NONE_VALUE, OTHER_VALUE)
        users = Merged({value: row}, empty_row(), True) if one_user else None
        return views.compact(view, make(views.compact_partial(row), users))

    # -- views ----------------------------------------------------------------------------

    async def performance(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        live = await self._live()
        seconds = (end_ms - start_ms) / 1000
        return await self._answer(
            "performance",
            start_ms,
            end_ms,
            where,
            group_by,
            lambda p, _: views.performance(p, live, seconds, self.targets),
        )

    async def costs(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        """CostMetrics of the range, with the global budget's current period (`daily_*`)."""
        blob = await self.redis.hget(keys.budgets(self.prefix), "global")
        budget = views.daily_budget(orjson.loads(blob) if blob else None)
        out = await self._answer(
            "costs", start_ms, end_ms, where, group_by, lambda p, users: views.costs(p, users)
        )
        return {**out, **budget}

    async def quality(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        return await self._answer(
            "quality", start_ms, end_ms, where, group_by, lambda p, _: views.quality(p)
        )

    async def health(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        live = await self._live()
        return await self._answer(
            "health", start_ms, end_ms, where, group_by, lambda p, _: views.health(p, live)
        )

    async def summary(
        self, start_ms: int, end_ms: int, where: Where | None = None, group_by: str | None = None
    ) -> dict[str, Any]:
        return await self._answer(
            "summary", start_ms, end_ms, where, group_by, lambda p, users: views.summary(p, users)
        )

    async def timeseries(
        self,
        metric: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        where: Where | None = None,
        group_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """One point per step: {"time_ms", "value"}; step is rounded up to whole minutes.
        With group_by: [{"value", "points"}] for the top groups (by events, or by cost for
        cost_nanousd) over the range, at most SERIES_GROUPS, plus `other`."""
        views.timeseries_value(metric, Partial(), 60.0)  # reject unknown names early
        how = plan(where, group_by)
        if how.mode in ("value", "table") and metric not in views.COMPACT_SERIES:
            raise UnsupportedSlice(
                f"{metric} is not kept per user or tag; one of {sorted(views.COMPACT_SERIES)}"
            )
        step = max(keys.MINUTE_MS, -(-step_ms // keys.MINUTE_MS) * keys.MINUTE_MS)
        start = keys.floor(start_ms, keys.MINUTE_MS)
        steps: list[tuple[int, list[Bucket]]] = [
            (s, [("minute", m) for m in range(s, min(s + step, end_ms), keys.MINUTE_MS)])
            for s in range(start, end_ms, step)
        ]
        seconds = step / 1000

        def point(s: int, p: Partial) -> dict[str, Any]:
            return {"time_ms": s, "value": views.timeseries_value(metric, p, seconds)}

        if how.mode == "total":
            names = [self._total_key(b) for _, bs in steps for b in bs]
            hashes = dict(zip(names, await self._hashes(names), strict=True))
            out = []
            for s, bs in steps:
                p = Partial()
                for b in bs:
                    for blob in hashes[self._total_key(b)].values():
                        p.merge(Partial.from_json(orjson.loads(blob)))
                out.append(point(s, p))
            return out
        if how.mode == "value":
            assert how.dimension is not None and how.value is not None
            rows = [await self._value_row(bs, how.dimension, how.value) for _, bs in steps]
            return [
                point(s, views.compact_partial(r)) for (s, _), r in zip(steps, rows, strict=True)
            ]
        if how.mode == "cells" and how.group_index is None:
            filtered = []
            for s, bs in steps:
                filtered.append(point(s, _filtered(await self._cells(bs, how.match), how.match)))
            return filtered
        by_cost = metric == "cost_nanousd"
        if how.mode == "cells":
            assert how.group_index is not None
            per_step_p = [
                _group_cells(await self._cells(bs, how.match), how.match, how.group_index)
                for _, bs in steps
            ]
            whole: dict[str, list[int]] = {}
            for groups in per_step_p:
                for v, p in groups.items():
                    add_row(whole.setdefault(v, empty_row()), figures_of(p))
            top = _top(whole, by_cost)
            series: list[dict[str, Any]] = []
            for v in top:
                empty = Partial()
                series.append(
                    {"value": v, "points": [point(s, g.get(v, empty)) for (s, _), g in
                                            zip(steps, per_step_p, strict=True)]}
                )  # fmt: skip
            if len(whole) > len(top):
                points = []
                for (s, _), groups in zip(steps, per_step_p, strict=True):
                    p = Partial()
                    for v, gp in groups.items():
                        if v not in top:
                            p.merge(gp)
                    points.append(point(s, p))
                series.append({"value": OTHER_VALUE, "points": points})
            return series
        assert how.dimension is not None
        everything = [b for _, bs in steps for b in bs]
        merged, none = await self._grouped(everything, how.dimension, by_cost)
        ranked = dict(merged.values)
        if none[EVENTS]:
            ranked[NONE_VALUE] = none
        top = _top(ranked, by_cost)
        per_step = []
        for _, bs in steps:
            # a value exact over the range is exact in each step: sum its listed rows
            tables, in_step = await self._tables(bs, how.dimension, with_totals=True)
            total = figures_of(in_step)
            step_rows: dict[str, list[int]] = {}
            kept = empty_row()
            for t in tables:
                add_row(kept, t.other)
                for v, row in t.values.items():
                    add_row(kept, row)
                    if v in top:
                        add_row(step_rows.setdefault(v, empty_row()), row)
            step_rows[NONE_VALUE] = minus(total, kept)
            per_step.append((step_rows, total))
        series = []
        for v in top:
            series.append(
                {"value": v, "points": [point(s, views.compact_partial(sr.get(v, empty_row())))
                                        for (s, _), (sr, _) in zip(steps, per_step, strict=True)]}
            )  # fmt: skip
        if len(ranked) > len(top) or merged.other[EVENTS]:
            points = []
            for (s, _), (sr, total) in zip(steps, per_step, strict=True):
                rest = list(total)
                for v in top:
                    rest = minus(rest, sr.get(v, empty_row()))
                points.append(point(s, views.compact_partial(rest)))
            series.append({"value": OTHER_VALUE, "points": points})
        return series

    async def daily_costs(
        self, from_day: str, to_day: str, where: Where | None = None
    ) -> list[dict[str, Any]]:
        """DailyCostSummary per day, both ends included (days in the worker's time zone)."""
        first, last = date.fromisoformat(from_day), date.fromisoformat(to_day)
        days = [first + timedelta(n) for n in range((last - first).days + 1)]
        out = []
        for d in days:
            bucket: Bucket = ("day", d.isoformat())
            one = await self._answer(
                "costs",
                0,
                0,
                where,
                None,
                lambda p, users: {
                    **views.costs(p, users, top_users=20),
                    "generations": p.count.get("generation_started", 0),
                },
                buckets=[bucket],
            )
            out.append(
                {
                    "date": d.isoformat(),
                    "total_cost_nanousd": one["total_cost_nanousd"],
                    "total_cost_usd": one["total_cost_usd"],
                    "total_calls": one["total_calls"],
                    "total_tokens": one["total_tokens"],
                    "unpriced_calls": one["unpriced_calls"],
                    "by_model": one["by_model"],
                    "user_count": one["user_count"],
                    "users_complete": one["users_complete"],
                    "top_users": one["by_user"],
                    "cost_per_user_usd": one["cost_per_user_usd"],
                    "generations": one["generations"],
                }
            )
        return out

    async def top_users(
        self,
        start_ms: int,
        end_ms: int,
        by: str = "cost",
        limit: int = 20,
        where: Where | None = None,
    ) -> dict[str, Any]:
        """The `limit` users with the most cost, tokens or generations in the range, from the
        bounded user table: only users whose figures are exact are ranked; `other` holds the
        rest, and `complete` is False when some user fell out of a table of the range (the
        ranking may then miss someone whose events sit in `other`)."""
        figure = RANKINGS.get(by)
        if figure is None:
            raise UnsupportedSlice(f"by={by!r}: one of {', '.join(RANKINGS)}")
        w = where or Where()
        if not (w.is_empty() or Where(user=w.user) == w):
            raise UnsupportedSlice("top users take no filter but user= (one bounded table)")
        buckets = self._buckets(start_ms, end_ms)
        if w.user is not None:
            row = await self._value_row(buckets, "user", w.user)
            merged = Merged({w.user: row} if row[EVENTS] else {}, empty_row(), True)
        else:
            merged = Merged.of((await self._tables(buckets, "user"))[0], limit, figure)
        values = merged.values
        ranked = sorted(values.items(), key=lambda kv: (-figure(kv[1]), kv[0]))
        other = list(merged.other)
        for _, row in ranked[limit:]:
            add_row(other, row)
        return {
            "start_ms": start_ms,
            "end_ms": end_ms,
            "by": by,
            "users": [_user_figures(u, row) for u, row in ranked[:limit]],
            "other": _user_figures(OTHER_VALUE, other),
            "complete": merged.complete,
        }

    async def budgets(self) -> list[dict[str, Any]]:
        fields = await self.redis.hgetall(keys.budgets(self.prefix))
        return sorted((orjson.loads(v) for v in fields.values()), key=lambda b: b["scope"])

    async def alerts(
        self,
        since_ms: int | None = None,
        severity: str | None = None,
        scope: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        low: str | int = "-inf" if since_ms is None else since_ms
        raw = await self.redis.zrevrangebyscore(keys.alerts(self.prefix), "+inf", low)
        out = []
        for blob in raw:
            alert = orjson.loads(blob)  # type: ignore[arg-type]
            if severity is not None and alert.get("severity") != severity:
                continue
            if scope is not None and alert.get("scope") != scope:
                continue
            out.append(alert)
            if len(out) >= limit:
                break
        return out

    async def recent_errors(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, across partitions."""
        return list((await self._live())["errors"][:limit])


RANKINGS: dict[str, Callable[[list[int]], int]] = {
    "cost": lambda r: r[COST],
    "tokens": lambda r: r[INPUT] + r[OUTPUT],
    "generations": lambda r: r[GENERATIONS],
}


def _user_figures(user: str, row: list[int]) -> dict[str, Any]:
    return {
        "user": user,
        "cost_nanousd": row[COST],
        "cost_usd": usd(row[COST]),
        "tokens": row[INPUT] + row[OUTPUT],
        "calls": row[CALLS],
        "generations": row[GENERATIONS],
    }


def _filtered(cells: dict[CellKey, Partial], match: tuple[Wanted, ...]) -> Partial:
    """The matching cells merged, then projected on the model and tier filters."""
    p = Partial()
    for cp in cells.values():
        p.merge(cp)
    return project(p, match[2], match[3])


def _group_cells(
    cells: dict[CellKey, Partial], match: tuple[Wanted, ...], index: int
) -> dict[str, Partial]:
    """Group by a cell dimension (service, environment: merge cells by value) or by model or
    tier (projections of the merged cells); every group honours the filters."""
    out: dict[str, Partial] = {}
    if index < 2:
        for cell, cp in cells.items():
            value = cell[index]
            key = NONE_VALUE if value is None else value
            mine = out.get(key)
            if mine is None:
                out[key] = mine = Partial()
            mine.merge(cp)
        return {v: project(p, match[2], match[3]) for v, p in out.items()}
    whole = _filtered(cells, match)
    if index == 2:
        wanted: set[str | None] = {*whole.models, None}
    else:
        wanted = {row["tier"] for row in whole.models.values()} | {None}
    for value in wanted:
        model, tier = (value, match[3]) if index == 2 else (match[2], value)
        p = project(whole, model, tier)
        if not p.is_empty():
            out[NONE_VALUE if value is None else value] = p
    return out


def _rank(view: str, row: list[int], value: str) -> tuple[int, str]:
    """Groups sort by events descending (by cost for the costs view), then by name."""
    return (-row[COST] if view == "costs" else -row[EVENTS], value)


def _top(rows: dict[str, list[int]], by_cost: bool) -> list[str]:
    key = COST if by_cost else EVENTS
    ranked = sorted(rows.items(), key=lambda kv: (-kv[1][key], kv[0]))
    return [v for v, _ in ranked[:SERIES_GROUPS]]
