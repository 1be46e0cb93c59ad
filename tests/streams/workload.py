"""A seeded synthetic workload for the worker tests, and an oracle that computes the expected
aggregates in plain Python from the records actually read back from Kafka.

The oracle shares no code with streams/ (only the contract decoder): it keeps every raw value
in lists and computes exact figures, so a fold or merge bug in the worker shows up as a
mismatch.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections import Counter, defaultdict
from typing import Any

import orjson

from producers.contract import EventDecodeError, decode_event

PHASES = ("extraction", "analysis", "synthesis", "enhancement")
MODELS = (("claude-haiku", "haiku", 800, 4000), ("claude-sonnet", "sonnet", 3000, 15000))
MODELS += (("claude-opus", "opus", 15000, 75000),)


def _event(kind: str, ts: int, sid: str, user: str | None, **data: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "timestamp": ts,
        "session_id": sid,
        "user_id": user,
        "service": "uvp",
        "data": data,
    }


def session_events(rng: random.Random, sid: str, user: str | None, t0: int) -> list[dict]:
    """One generation session, in the order a real service would report it, using every one
    of the specification's 24 event types (and the SDK's additions)."""
    out = [_event("generation_started", t0, sid, user)]
    t = t0
    for _ in range(rng.choice((0, 1, 1, 2))):
        out.append(_event("profile_selected", t, sid, user, profile_id=f"p{rng.randint(1, 9)}"))
    if rng.random() < 0.2:
        out.append(_event("profile_deselected", t, sid, user, profile_id="p1"))
    out.append(_event("first_byte", t + 1, sid, user, elapsed_ms=rng.lognormvariate(5.8, 0.6)))
    upgraded = rng.random() < 0.06
    for phase in PHASES:
        d = rng.lognormvariate(6.5, 0.7)
        out.append(_event("phase_started", t + 2, sid, user, phase=phase))
        out.append(_event("stream_started", t + 2, sid, user, stream_id=f"{sid}-{phase}"))
        t += int(d)
        out.append(
            _event(
                "stream_completed",
                t,
                sid,
                user,
                stream_id=f"{sid}-{phase}",
                duration_ms=d,
                time_to_first_chunk_ms=d / 5,
                chunks=rng.randint(1, 40),
            )
        )
        if rng.random() < 0.01:
            out.append(_event("phase_failed", t, sid, user, phase=phase))
        out.append(_event("phase_completed", t, sid, user, phase=phase, duration_ms=d))
        model, tier, pin, pout = rng.choice(MODELS)
        tin, tout = rng.randint(50, 4000), rng.randint(20, 2000)
        if rng.random() < 0.03:
            out.append(
                _event(
                    "model_called",
                    t,
                    sid,
                    user,
                    model="mystery-9",
                    tier=None,
                    input_tokens=tin,
                    output_tokens=tout,
                    priced=False,
                )
            )
        else:
            cost = (tin * pin + tout * pout) * 1000 // 1000  # nano-dollars
            out.append(
                _event(
                    "model_called",
                    t,
                    sid,
                    user,
                    model=model,
                    tier=tier,
                    input_tokens=tin,
                    output_tokens=tout,
                    cost_nanousd=cost,
                    cache_read_tokens=rng.choice((0, 0, 100)),
                    duration_ms=d / 2,
                )
            )
        if upgraded and phase == "analysis":
            out.append(_event("model_upgraded", t, sid, user, from_tier="haiku", to_tier="sonnet"))
    out.append(_event(rng.choice(("cache_hit", "cache_miss")), t, sid, user))
    out.append(_event("first_content", t + 1, sid, user, elapsed_ms=rng.lognormvariate(7.3, 0.5)))
    out.append(_event("interactive", t + 2, sid, user, elapsed_ms=rng.lognormvariate(8.3, 0.5)))
    if rng.random() < 0.08:
        out.append(
            _event(
                "error_occurred",
                t + 3,
                sid,
                user,
                error_type=rng.choice(("timeout", "rate_limit")),
                message="boom",
            )
        )
        out.append(_event("retry_attempted", t + 3, sid, user))
        if rng.random() < 0.5:
            out.append(_event("retry_succeeded", t + 3, sid, user))
        else:
            out.append(_event("retry_failed", t + 3, sid, user, attempts=rng.randint(1, 4)))
        if rng.random() < 0.5:
            out.append(_event("circuit_breaker_opened", t + 3, sid, user, name="sonnet"))
        out.append(_event("generation_failed", t + 4, sid, user, duration_ms=float(t + 4 - t0)))
        return out
    if rng.random() < 0.04:
        out.append(_event("generation_canceled", t + 4, sid, user, reason="user"))
        return out
    if rng.random() < 0.02:
        out.append(_event("fallback_triggered", t + 3, sid, user))
    out.append(_event("generation_completed", t + 5, sid, user, duration_ms=float(t + 5 - t0)))
    out.append(
        _event(
            "quality_scored",
            t + 6,
            sid,
            user,
            score=rng.uniform(30, 100),
            confidence=rng.uniform(0.4, 1.0),
        )
    )
    r = rng.random()
    if r < 0.15:
        for i in range(rng.randint(1, 3)):
            kind = rng.choice(("uvp_edited", "transformation_edited", "benefit_reordered"))
            edit = {"field": "headline"} if kind != "benefit_reordered" else {"to_index": 0}
            out.append(_event(kind, t + 2000 + i, sid, user, **edit))
        out.append(_event("uvp_approved", t + 9000, sid, user, edits_made=rng.randint(1, 3)))
    elif r < 0.2:
        out.append(_event("uvp_approved", t + 5000, sid, user, edits_made=2))
    elif r < 0.55:
        out.append(_event("uvp_approved", t + rng.randint(1000, 60000), sid, user))
    elif r < 0.6:
        out.append(_event("uvp_approved", t + 4000, sid, user, approved=False, edits_made=0))
        out.append(_event("uvp_regenerated", t + 5000, sid, user))
    elif r < 0.68:
        out.append(_event("uvp_regenerated", t + 3000, sid, user))
    elif r < 0.75:
        out.append(_event("generation_canceled", t + 3000, sid, user))
    if rng.random() < 0.2:
        out.append(_event("satisfaction_rated", t + 11000, sid, user, rating=rng.randint(1, 5)))
    if rng.random() < 0.1:
        out.append(_event("nps_rated", t + 12000, sid, user, score=rng.randint(0, 10)))
    return out


def workload(seed: int, min_events: int, start_ms: int, span_ms: int) -> list[dict]:
    rng = random.Random(seed)
    events: list[dict] = []
    n = 0
    while len(events) < min_events:
        user = None if rng.random() < 0.05 else f"user-{rng.randint(1, 300)}"
        t0 = start_ms + rng.randint(0, span_ms)
        events.extend(session_events(rng, f"s-{seed}-{n}", user, t0))
        n += 1
    return events


def malformed(seed: int, n: int, now_ms: int) -> list[bytes]:
    """n records that must all end in the DLQ, of every kind the worker rejects."""
    rng = random.Random(seed)
    good = _event("phase_completed", now_ms, "bad-s", "u", phase="analysis", duration_ms=5.0)
    makers = [
        lambda: b"{not json",
        lambda: b"\xff\xfe garbage",
        lambda: b"[1, 2, 3]",
        lambda: orjson.dumps({**good, "type": "teleported"}),
        lambda: orjson.dumps({k: v for k, v in good.items() if k != "session_id"}),
        lambda: orjson.dumps({**good, "data": {"phase": "lunch"}}),
        lambda: orjson.dumps({**good, "timestamp": now_ms // 1000}),
        lambda: orjson.dumps({**good, "v": 7}),
        lambda: orjson.dumps({**good, "data": {"phase": "analysis", "duration_ms": 9e9}}),
        lambda: orjson.dumps(
            {
                **good,
                "type": "model_called",
                "data": {"model": "m", "input_tokens": 10**9, "output_tokens": 1},
            }
        ),
        lambda: b"x" * 70_000,
    ]
    return [rng.choice(makers)() for _ in range(n)]


MARKS = {
    "first_byte": "time_to_first_byte_ms",
    "first_content": "time_to_first_content_ms",
    "interactive": "time_to_interactive_ms",
}


EDIT_KINDS = ("uvp_edited", "transformation_edited", "benefit_reordered")


class Oracle:
    """Expected aggregates from raw event records (bytes), computed the plain way.

    Outcomes follow the specification's QualityMetrics, one per generation: each generation
    is a record; a session points at its running generation and at its last completed one
    still waiting for the user. acceptance = approved without edits, edit = approved after
    edits, regeneration, abandonment = canceled (while running or after completion), upgrade
    = upgraded during the generation or before its outcome; all over the generations
    completed or canceled while running (docs/metrics.md)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.values: defaultdict[str, list[float]] = defaultdict(list)
        self.cost_by_model: Counter[str] = Counter()
        self.calls_by_model: Counter[str] = Counter()
        self.unpriced = 0
        self.cost_by_user: Counter[str] = Counter()
        self.tokens_by_user: Counter[str] = Counter()
        self.tokens = Counter[str]()
        self.by_tier: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.scores: list[float] = []
        self.confidences: list[float] = []
        self.satisfaction: list[int] = []
        self.nps: list[int] = []
        self.errors_by_type: Counter[str] = Counter()
        self.upgrade_paths: Counter[tuple[str, str]] = Counter()
        self.phase_failures: Counter[str] = Counter()
        self.phases_started: Counter[str] = Counter()
        self.stream_chunks = 0
        self.retry_failed_attempts = 0
        self.rejections = 0
        self.generations: list[dict[str, Any]] = []
        self.dead = 0
        self._running: dict[str, dict[str, Any]] = {}
        self._waiting: dict[str, dict[str, Any]] = {}

    def feed(self, raw: bytes) -> None:
        try:
            e = decode_event(raw)
        except EventDecodeError:
            self.dead += 1
            return
        d = e.data
        if any(
            (d.get(k) or 0) > 86_400_000
            for k in ("duration_ms", "elapsed_ms", "time_to_first_chunk_ms")
        ):
            self.dead += 1
            return
        if e.type == "model_called" and d["input_tokens"] + d["output_tokens"] > 10_000_000:
            self.dead += 1
            return
        kind = e.type.value
        self.count[kind] += 1
        self._generation(kind, e.session_id, e.timestamp, d)
        if kind == "generation_completed":
            if "duration_ms" in d:
                self.values["generation_duration_ms"].append(d["duration_ms"])
                self.values["time_to_complete_ms"].append(d["duration_ms"])
        elif kind == "generation_failed":
            if "duration_ms" in d:
                self.values["generation_duration_ms"].append(d["duration_ms"])
        elif kind in ("phase_completed", "phase_failed"):
            if "duration_ms" in d:
                self.values[f"phase_duration_ms:{d['phase']}"].append(d["duration_ms"])
            if kind == "phase_failed":
                self.phase_failures[d["phase"]] += 1
        elif kind == "phase_started":
            self.phases_started[d["phase"]] += 1
        elif kind in MARKS:
            self.values[MARKS[kind]].append(d["elapsed_ms"])
        elif kind == "model_called":
            self.calls_by_model[d["model"]] += 1
            for k in ("input_tokens", "output_tokens"):
                self.tokens[k] += d[k]
            priced = d.get("priced", True) and d.get("cost_nanousd") is not None
            if d.get("tier"):
                tier = self.by_tier[d["tier"]]
                tier["calls"] += 1
                tier["input"] += d["input_tokens"]
                tier["output"] += d["output_tokens"]
                tier["cost"] += d["cost_nanousd"] if priced else 0
            if priced:
                self.cost_by_model[d["model"]] += d["cost_nanousd"]
                if e.user_id:
                    self.cost_by_user[e.user_id] += d["cost_nanousd"]
            else:
                self.unpriced += 1
            if e.user_id:
                self.tokens_by_user[e.user_id] += d["input_tokens"] + d["output_tokens"]
        elif kind == "quality_scored":
            self.scores.append(d["score"])
            self.confidences.append(d["confidence"])
        elif kind == "satisfaction_rated":
            self.satisfaction.append(d["rating"])
        elif kind == "nps_rated":
            self.nps.append(d["score"])
        elif kind == "error_occurred":
            self.errors_by_type[d["error_type"]] += 1
        elif kind == "model_upgraded":
            self.upgrade_paths[(d.get("from_tier", "unknown"), d.get("to_tier", "unknown"))] += 1
        elif kind == "stream_completed":
            self.stream_chunks += d.get("chunks", 0)
            if "duration_ms" in d:
                self.values["stream_duration_ms"].append(d["duration_ms"])
            if "time_to_first_chunk_ms" in d:
                self.values["stream_time_to_first_chunk_ms"].append(d["time_to_first_chunk_ms"])
        elif kind == "retry_failed":
            self.retry_failed_attempts += d.get("attempts", 0)

    def _generation(self, kind: str, sid: str, ts: int, d: dict[str, Any]) -> None:
        """Which generation an event belongs to, and the generation's outcome."""
        running, waiting = self._running.get(sid), self._waiting.get(sid)
        if kind == "generation_started":
            self._running[sid] = {"upgraded": False, "edits": 0, "outcome": None}
        elif kind == "generation_completed":
            g = self._running.pop(sid, None) or {"upgraded": False, "edits": 0, "outcome": None}
            g["completed_ms"] = ts
            self.generations.append(g)
            self._waiting[sid] = g
        elif kind == "generation_failed":
            self._running.pop(sid, None)
        elif kind == "generation_canceled":
            if running is not None:
                running["outcome"] = "canceled"
                self.generations.append(self._running.pop(sid))
            elif waiting is not None:
                waiting["outcome"] = "canceled"
                del self._waiting[sid]
        elif kind in EDIT_KINDS and waiting is not None:
            waiting["edits"] += 1
        elif kind == "uvp_approved":
            if d.get("approved") is False:
                self.rejections += 1
            elif waiting is not None:
                edited = waiting["edits"] or d.get("edits_made", 0)
                waiting["outcome"] = "approved_after_edit" if edited else "approved_without_edit"
                waiting["approved_ms"] = ts
                del self._waiting[sid]
        elif kind == "uvp_regenerated" and waiting is not None:
            waiting["outcome"] = "regenerated"
            del self._waiting[sid]
        elif kind == "model_upgraded":
            g = running if running is not None else waiting
            if g is not None:
                g["upgraded"] = True

    def outcomes(self) -> Counter[str | None]:
        return Counter(g["outcome"] for g in self.generations)

    def share(self, outcome: str) -> float | None:
        n = len(self.generations)
        return self.outcomes()[outcome] / n if n else None

    @property
    def approved_without_edit(self) -> int:
        return self.outcomes()["approved_without_edit"]

    @property
    def upgrade_rate(self) -> float | None:
        n = len(self.generations)
        return sum(g["upgraded"] for g in self.generations) / n if n else None

    @property
    def time_to_approval(self) -> list[float]:
        return [
            g["approved_ms"] - g["completed_ms"]
            for g in self.generations
            if "approved_ms" in g and g["approved_ms"] >= g["completed_ms"]
        ]

    @property
    def total_cost(self) -> int:
        return sum(self.cost_by_model.values())


def dlq_reasons(records: list[Any]) -> Counter[str]:
    reasons: Counter[str] = Counter()
    for r in records:
        letter = orjson.loads(r.value)
        assert base64.b64decode(letter["raw"]) is not None
        reasons[letter["reason"]] += 1
    return reasons


def quantile_ok(values: list[float], q: float, got: float | None, alpha: float = 0.01) -> bool:
    """DDSketch's promise: within alpha of a value at the quantile's rank."""
    if got is None:
        return not values
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = ordered[int(rank)], ordered[min(int(rank) + 1, len(ordered) - 1)]
    return low * (1 - alpha) - 1e-9 <= got <= high * (1 + alpha) + 1e-9
