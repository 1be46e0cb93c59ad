"""The controller: one owner (the single partition of `<prefix>.worker-rollup`) for budgets
and alert rules, fed by the aggregators' per-batch roll-ups and the compacted control topic.

State (one ledger row per budget, a day total per scope, the global per-minute window for
rules, breaker states, open episodes) lives in memory and in a compacted changelog; each
poll's state changes, alerts, budget-state records and input offset are one Kafka
transaction, so an alert is published exactly once per threshold per scope per period,
across restarts and rebalances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from streams import budget_ledger as ledger
from streams import budgets as budget_rules
from streams import keys, sketches
from streams import rules as alert_rules
from streams.budget_periods import Period, period_of
from streams.day_spend import DaySpend
from streams.settings import WorkerSettings
from streams.snapshots import SnapshotWriter

log = logging.getLogger("genpulse.worker")
KEEP_MINUTES = 120
REPUBLISH_MS = 5_000  # budget-state is re-sent this often so forecasts stay current


class Controller:
    def __init__(self, settings: WorkerSettings, snapshots: SnapshotWriter) -> None:
        self.settings = settings
        self.snapshots = snapshots
        self.group_id = f"{settings.app_id}-controller"
        self.rollup = TopicPartition(settings.internal_topic("rollup"), 0)
        self.changelog = TopicPartition(settings.internal_topic("controller-changelog"), 0)
        self.cost_day = Period("day", settings.cost_timezone)
        self.budgets: dict[str, budget_rules.Budget] = {}
        self.rules: dict[str, alert_rules.Rule] = {}
        self.owner = False
        self.spend = DaySpend()  # scope -> its spend in its latest cost day (compact)
        self.rows: dict[str, ledger.Row] = {}  # scope -> its budget's ledger row
        self.clock_ms = 0  # the later of the newest event time and the wall clock
        self.window: dict[str, Any] = {"minutes": {}, "breakers": {}, "episodes": {}, "newest": 0}
        self._published: dict[str, tuple[Any, ...]] = {}
        self._published_at: dict[str, int] = {}
        self._written: dict[str, bytes] = {}
        self._dropped: set[str] = set()  # budget rows to tombstone in the changelog
        self._spent_before: set[str] = set()  # spend rows of past days, to tombstone
        self._today = ""  # the clock's cost day, set each poll
        self._recheck: set[str] = set()
        self._stopping = False
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._control: AIOKafkaConsumer | None = None
        snapshots.on_recovered.append(self.requeue_all)

    def stop(self) -> None:
        self._stopping = True

    async def requeue_all(self) -> None:
        """Redis came back (maybe empty): publish budget states and alerts there again."""
        if self.owner:
            self._published.clear()
            self._recheck.update(self.budgets)
            await self._replay_alerts_to_redis()

    async def run(self) -> None:
        s = self.settings
        self._control = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self._control.start()
        control_tp = TopicPartition(s.topic("control"), 0)
        self._control.assign([control_tp])
        await self._control.seek_to_beginning(control_tp)
        end = (await self._control.end_offsets([control_tp]))[control_tp]
        while await self._control.position(control_tp) < end:  # budgets and rules first
            got = await self._control.getmany(control_tp, timeout_ms=1000)
            for record in got.get(control_tp, []):
                self._on_control(record.key, record.value)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            transactional_id=f"{s.app_id}-controller-{s.worker_id or 'solo'}",
            transaction_timeout_ms=s.transaction_timeout_ms,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(500, s.session_timeout_ms // 5),
        )
        self._consumer.subscribe([self.rollup.topic], listener=_Listener(self))
        await self._consumer.start()
        try:
            while not self._stopping:
                batch = await self._consumer.getmany(timeout_ms=200, max_records=5_000)
                control = await self._control.getmany(timeout_ms=0)
                async with self._lock:
                    for records in control.values():
                        for record in records:
                            self._on_control(record.key, record.value)
                    if self.owner:
                        await self._step(batch.get(self.rollup, []))
        finally:
            async with self._lock:
                if self.owner:
                    await self._release()
            await self._consumer.stop()
            await self._producer.stop()
            await self._control.stop()

    # -- ownership ---------------------------------------------------------------------------

    async def assign(self, tps: set[TopicPartition]) -> None:
        if self.rollup not in tps:
            return
        async with self._lock:
            await self._restore()
            await self._replay_alerts_to_redis()
            self.owner = True
            self._recheck.update(self.budgets)
            self._published.clear()

    async def revoke(self, tps: set[TopicPartition]) -> None:
        if self.rollup in tps:
            async with self._lock:
                await self._release()

    async def _release(self) -> None:
        """Stop owning the budgets: the states queued for Redis are written before the group
        can hand the roll-up to another worker, so none of ours lands after its."""
        self.owner = False
        budgets = keys.budgets(self.settings.key_prefix)
        if not await self.snapshots.hand_over(lambda key, _field: key == budgets):
            log.warning("redis unavailable at hand-over; budget states left to the next owner")

    async def _restore(self) -> None:
        self.spend = DaySpend()
        self.window = {"minutes": {}, "breakers": {}, "episodes": {}, "newest": 0}
        self.rows, self._written = {}, {}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            consumer.assign([self.changelog])
            await consumer.seek_to_beginning(self.changelog)
            end = (await consumer.end_offsets([self.changelog]))[self.changelog]
            while await consumer.position(self.changelog) < end:
                got = await consumer.getmany(self.changelog, timeout_ms=1000)
                for record in got.get(self.changelog, []):
                    key = (record.key or b"").decode()
                    value = None if record.value is None else orjson.loads(record.value)
                    if key == "window" and value is not None:
                        self.window = value
                    elif key.startswith("spend:"):
                        self.spend.restore(key[6:], value)
                    elif key.startswith("budget:"):
                        if value is None:
                            self.rows.pop(key[7:], None)
                        else:
                            self.rows[key[7:]] = value
                            self._written[key[7:]] = record.value
        finally:
            await consumer.stop()
        next_offset = self.window.get("next_offset")
        if next_offset is not None and self._consumer is not None:
            self._consumer.seek(self.rollup, next_offset)

    async def _replay_alerts_to_redis(self) -> None:
        """A crash between a commit and the next Redis write would lose alerts there; the
        topic has them all (same bytes, so the sorted set does not duplicate them)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        tp = TopicPartition(self.settings.topic("alerts"), 0)
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.seek(tp, max(0, end - 10_000))
            while await consumer.position(tp) < end:
                got = await consumer.getmany(tp, timeout_ms=1000)
                for record in got.get(tp, []):
                    alert = orjson.loads(record.value)
                    self.snapshots.add_alert(int(alert.get("time_ms", 0)), record.value)
        finally:
            await consumer.stop()

    def _on_control(self, key: bytes | None, value: bytes | None) -> None:
        name = (key or b"").decode()
        try:
            obj = None if value is None else orjson.loads(value)
            if name.startswith("budget:"):
                scope = name[len("budget:") :]
                before = self.budgets.get(scope)
                if obj is None:
                    self.budgets.pop(scope, None)
                else:
                    self.budgets[scope] = budget_rules.parse_budget(obj, self.cost_day.timezone)
                after = self.budgets.get(scope)
                moved = before is None or after is None or before.period != after.period
                if moved and self.rows.pop(scope, None) is not None:  # another period: clean
                    self._written.pop(scope, None)
                    self._dropped.add(scope)
                self._recheck.add(scope)
            elif name.startswith("rule:"):
                if obj is None:
                    self.rules.pop(name[5:], None)
                else:
                    rule = alert_rules.parse_rule(obj)
                    self.rules[rule.id] = rule
        except (ValueError, TypeError) as exc:
            log.warning("control record %s ignored: %s", name, exc)

    # -- one poll ----------------------------------------------------------------------------

    async def _step(self, records: list[Any]) -> None:
        now_ms = int(time.time() * 1000)
        rolls = [orjson.loads(record.value) for record in records]
        newest = max((int(m) for roll in rolls for _, m, _ in _spend_of(roll)), default=0)
        self.clock_ms = max(self.clock_ms, now_ms, newest)
        clock = self.clock_ms
        self._today = period_of(self.cost_day, clock)[0]
        self._spent_before.update(self.spend.expire(self._today))
        changed: set[str] = set(self._recheck)  # scopes whose budget-state must be re-sent
        self._recheck.clear()
        days: set[str] = set()
        window_changed = False
        alerts: list[dict[str, Any]] = []
        for budget in self.budgets.values():  # to the clock's period first
            alerts.extend(ledger.advance(self._row(budget, clock), budget, clock))
        for record, roll in zip(records, rolls, strict=True):
            for scope, minute, nanos in _spend_of(roll):
                if self._add_day(scope, minute, nanos):
                    days.add(scope)
                spent = self.budgets.get(scope)
                if spent is not None:
                    ledger.add(self._row(spent, clock), spent, minute, nanos, clock)
                    changed.add(scope)
            window_changed |= self._add_window(roll)
            alerts.extend(self._breaker_transitions(roll["breakers"], now_ms))
            self.window["next_offset"] = record.offset + 1
        states: list[dict[str, Any]] = []
        rows: list[str] = []
        for scope in sorted(self.budgets):
            budget = self.budgets[scope]
            row = self._row(budget, clock)
            alerts.extend(ledger.evaluate(row, budget, clock, now_ms))
            stored = orjson.dumps(row)
            if self._written.get(scope) != stored:
                self._written[scope] = stored
                rows.append(scope)
            state = ledger.record(row, budget, clock, now_ms)
            signature = (
                state["period"],
                state["spend_nanousd"],
                state["state"],
                budget,
                state["forecast"]["alert"],
            )
            stale = now_ms - self._published_at.get(scope, 0) >= REPUBLISH_MS
            if scope in changed or stale or self._published.get(scope) != signature:
                self._published[scope] = signature
                self._published_at[scope] = now_ms
                states.append(state)
        if self.rules or self.window["episodes"]:
            rule_alerts = self._evaluate_rules(now_ms)
            window_changed |= bool(rule_alerts)
            alerts.extend(rule_alerts)
        tombstones = self._dropped or self._spent_before
        if not (records or rows or days or alerts or states or window_changed or tombstones):
            return
        await self._commit(records, days, rows, window_changed, alerts, states)

    def _row(self, budget: budget_rules.Budget, clock_ms: int) -> ledger.Row:
        """The budget's row; a new day budget in the cost zone starts from the day's spend."""
        row = self.rows.get(budget.scope)
        if row is None or row.get("kind") != ledger.kind_of(budget):
            day = self.spend.row(budget.scope)
            seed, fired = 0, ()
            today = period_of(self.cost_day, clock_ms)[0]
            if day is not None and budget.period == self.cost_day and day["period"] == today:
                seed, fired = day["spend_nanousd"], day.get("fired", ())
            row = self.rows[budget.scope] = ledger.new_row(budget, clock_ms, seed, fired)
        return row

    def _add_day(self, scope: str, minute: int, nanos: int) -> bool:
        """The scope's spend in the cost time zone's day (what a new day budget starts from)."""
        # a call of an earlier day than the clock's is not kept (False): only today's spend
        # seeds a budget, and past days are expired (DaySpend.expire)
        day = period_of(self.cost_day, minute)[0]
        if day < self._today:
            return False
        return self.spend.add(scope, day, nanos)

    def _needs(self) -> tuple[set[str], int]:
        """Sketches the latency rules read, and how many minutes the rules look back."""
        metrics = {r.metric for r in self.rules.values() if r.type == "latency_slo"}
        windows = [r.window_s for r in self.rules.values() if r.type != "circuit_breaker"]
        return metrics, max(windows, default=300) // 60 + 1

    def _add_window(self, roll: dict[str, Any]) -> bool:
        minutes = self.window["minutes"]
        metrics, keep = self._needs()
        for key, m in roll["minutes"].items():
            m = {**m, "sketch": {k: v for k, v in m["sketch"].items() if k in metrics}}
            mine = minutes.get(key)
            if mine is None:
                minutes[key] = m
            else:
                mine["started"] += m["started"]
                mine["failed"] += m["failed"]
                for name, wire in m["sketch"].items():
                    merged = sketches.from_wire(mine["sketch"].get(name) or {})
                    sketches.merge_into(merged, sketches.from_wire(wire))
                    mine["sketch"][name] = sketches.to_wire(merged)
            self.window["newest"] = max(self.window["newest"], int(key))
        horizon = self.window["newest"] - min(keep, KEEP_MINUTES) * keys.MINUTE_MS
        for key in [k for k in minutes if int(k) < horizon]:
            del minutes[key]
        return bool(roll["minutes"] or roll["breakers"])

    def _breaker_transitions(self, changes: list[list[Any]], now_ms: int) -> list[dict[str, Any]]:
        """Breaker episodes follow each transition in order (not a per-poll sample), so the
        alert set does not depend on how records were batched."""
        breakers: dict[str, dict[str, Any]] = self.window["breakers"]
        episodes: dict[str, dict[str, Any]] = self.window["episodes"]
        out = []
        for name, state, ts in changes:
            current = breakers.get(name)
            if current is not None and current["since_ms"] > ts:
                continue  # an older transition reported late
            breakers[name] = {"state": state, "since_ms": ts}
            scope = f"breaker:{name}"
            for rule in self.rules.values():
                if rule.type != "circuit_breaker" or not rule.enabled:
                    continue
                key = f"{rule.id}|{scope}"
                if state == "open" and key not in episodes:
                    episodes[key] = {"since": ts, "value": 1.0}
                    out.append(alert_rules.alert_record(rule, scope, ts, "fired", 1.0, now_ms))
                elif state != "open" and key in episodes:
                    since = episodes.pop(key)["since"]
                    out.append(
                        alert_rules.alert_record(rule, scope, since, "resolved", 1.0, now_ms)
                    )
        return out

    def _evaluate_rules(self, now_ms: int) -> list[dict[str, Any]]:
        episodes: dict[str, dict[str, Any]] = self.window["episodes"]
        newest = self.window["newest"]
        out = []
        active: dict[str, tuple[alert_rules.Rule, float]] = {}
        for rule in self.rules.values():
            if rule.type == "circuit_breaker":
                continue  # episodes follow transitions: _breaker_transitions
            found = alert_rules.conditions(
                rule, self.window["minutes"], self.window["breakers"], newest
            )
            for scope, value in found.items():
                active[f"{rule.id}|{scope}"] = (rule, value)
        for key, (rule, value) in active.items():
            if key not in episodes:
                scope = key.split("|", 1)[1]
                episodes[key] = {"since": newest, "value": value}
                out.append(alert_rules.alert_record(rule, scope, newest, "fired", value, now_ms))
        watched = {r.id for r in self.rules.values() if r.type != "circuit_breaker"}
        for key in [k for k in episodes if k not in active and k.split("|", 1)[0] in watched]:
            episode = episodes.pop(key)
            rule_id, scope = key.split("|", 1)
            known = self.rules.get(rule_id)
            if known is not None:
                out.append(
                    alert_rules.alert_record(
                        known, scope, episode["since"], "resolved", episode["value"], now_ms
                    )
                )
        return out

    async def _commit(
        self,
        records: list[Any],
        days: set[str],
        rows: list[str],
        window_changed: bool,
        alerts: list[dict[str, Any]],
        states: list[dict[str, Any]],
    ) -> None:
        assert self._producer is not None
        s = self.settings
        producer = self._producer
        await producer.begin_transaction()
        futures = []
        changelog = self.changelog.topic
        for scope in sorted(self._spent_before):  # before today's rows: the later one wins
            futures.append(await producer.send(changelog, None, key=f"spend:{scope}".encode()))
        self._spent_before.clear()
        for scope in sorted(days):
            futures.append(
                await producer.send(
                    changelog, orjson.dumps(self.spend.row(scope)), key=f"spend:{scope}".encode()
                )
            )
        for scope in sorted(self._dropped):
            futures.append(await producer.send(changelog, None, key=f"budget:{scope}".encode()))
        self._dropped.clear()
        for scope in rows:
            futures.append(
                await producer.send(changelog, self._written[scope], key=f"budget:{scope}".encode())
            )
        if window_changed or records:
            futures.append(await producer.send(changelog, orjson.dumps(self.window), key=b"window"))
        for alert in alerts:
            futures.append(
                await producer.send(
                    s.topic("alerts"), orjson.dumps(alert), key=alert["id"].encode()
                )
            )
        for record in states:
            futures.append(
                await producer.send(
                    s.topic("budget-state"), orjson.dumps(record), key=record["scope"].encode()
                )
            )
        await asyncio.gather(*futures)
        if records:
            await producer.send_offsets_to_transaction(
                {self.rollup: records[-1].offset + 1}, self.group_id
            )
        await producer.commit_transaction()
        prefix = s.key_prefix
        for alert in alerts:
            self.snapshots.add_alert(alert["time_ms"], orjson.dumps(alert))
        for record in states:
            self.snapshots.put(keys.budgets(prefix), record["scope"], orjson.dumps(record), None)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.controller.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.controller.assign(set(assigned))


def _spend_of(roll: dict[str, Any]) -> list[tuple[str, int, int]]:
    """A roll-up's (scope, minute_ms, nanousd); entries of the older (scope, day) form,
    written before an upgrade, are skipped: their calls are in the costs, not the budget."""
    return [(scope, minute, nanos) for scope, minute, nanos in roll["spend"] if type(minute) is int]
