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
    """One generation session, in the order a real service would report it."""
    out = [_event("generation_started", t0, sid, user)]
    t = t0
    out.append(_event("first_byte", t + 1, sid, user, elapsed_ms=rng.lognormvariate(5.8, 0.6)))
    for phase in PHASES:
        d = rng.lognormvariate(6.5, 0.7)
        out.append(_event("phase_started", t + 2, sid, user, phase=phase))
        t += int(d)
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
        out.append(_event(rng.choice(("retry_succeeded", "retry_failed")), t + 3, sid, user))
        out.append(_event("generation_failed", t + 4, sid, user, duration_ms=float(t + 4 - t0)))
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
        out.append(_event("uvp_edited", t + 2000, sid, user))
        out.append(_event("uvp_approved", t + 9000, sid, user))
    elif r < 0.55:
        out.append(_event("uvp_approved", t + rng.randint(1000, 60000), sid, user))
    elif r < 0.65:
        out.append(_event("uvp_regenerated", t + 3000, sid, user))
    elif r < 0.72:
        out.append(_event("generation_canceled", t + 3000, sid, user))
    if rng.random() < 0.05:
        out.append(_event("model_upgraded", t + 10000, sid, user))
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


class Oracle:
    """Expected aggregates from raw event records (bytes), computed the plain way."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.values: defaultdict[str, list[float]] = defaultdict(list)
        self.cost_by_model: Counter[str] = Counter()
        self.calls_by_model: Counter[str] = Counter()
        self.unpriced = 0
        self.cost_by_user: Counter[str] = Counter()
        self.tokens_by_user: Counter[str] = Counter()
        self.tokens = Counter[str]()
        self.scores: list[float] = []
        self.confidences: list[float] = []
        self.satisfaction: list[int] = []
        self.nps: list[int] = []
        self.errors_by_type: Counter[str] = Counter()
        self.approved_without_edit = 0
        self.dead = 0
        self._sessions: dict[str, dict[str, Any]] = {}

    def feed(self, raw: bytes) -> None:
        try:
            e = decode_event(raw)
        except EventDecodeError:
            self.dead += 1
            return
        d = e.data
        if any(d.get(k, 0) > 86_400_000 for k in ("duration_ms", "elapsed_ms")):
            self.dead += 1
            return
        if e.type == "model_called" and d["input_tokens"] + d["output_tokens"] > 10_000_000:
            self.dead += 1
            return
        kind = e.type.value
        self.count[kind] += 1
        s = self._sessions.setdefault(e.session_id, {"done": None, "edited": False})
        if kind == "generation_completed":
            s.update(done=e.timestamp, edited=False)
            if "duration_ms" in d:
                self.values["generation_duration_ms"].append(d["duration_ms"])
                self.values["time_to_complete_ms"].append(d["duration_ms"])
        elif kind == "generation_failed":
            if "duration_ms" in d:
                self.values["generation_duration_ms"].append(d["duration_ms"])
        elif kind == "phase_completed":
            if "duration_ms" in d:
                self.values[f"phase_duration_ms:{d['phase']}"].append(d["duration_ms"])
        elif kind in MARKS:
            self.values[MARKS[kind]].append(d["elapsed_ms"])
        elif kind == "model_called":
            self.calls_by_model[d["model"]] += 1
            for k in ("input_tokens", "output_tokens"):
                self.tokens[k] += d[k]
            if d.get("priced", True) and d.get("cost_nanousd") is not None:
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
        elif kind == "uvp_edited":
            s["edited"] = True
        elif kind == "uvp_approved" and s["done"] is not None:
            self.approved_without_edit += not s["edited"] and not d.get("edits_made", 0)
            s["done"] = None  # one approval per generation counts

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
