"""A seeded model of the UVP generator's traffic: pure data, no I/O, same seed -> same actions.

Each session: generation_started, a cache hit (fast path) or miss, the four phases with
lognormal durations and one or two model calls each (tiers per phase, prompt-cache
tokens), errors with retries that succeed or fail, fallbacks to a cheaper tier, time to
first byte / content / interactive / complete, then a quality score and what the user did
(approve, edit, regenerate, abandon, upgrade, copy, export) and sometimes a rating.
Across sessions: a circuit breaker that opens, half-opens and closes now and then, and
queue-depth samples.

Measurements (durations) are `Measure` actions, sent as metric series; everything else
becomes exactly one event, so a consumer can recompute every aggregate from this list.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PHASES = ("extraction", "analysis", "synthesis", "enhancement")

PHASE_MEDIAN_MS = {
    "extraction": 800.0,
    "analysis": 2500.0,
    "synthesis": 3500.0,
    "enhancement": 1500.0,
}
PHASE_MODELS = {
    "extraction": ("claude-3-5-haiku-20241022",),
    "analysis": ("claude-3-5-sonnet-20241022",),
    "synthesis": ("claude-3-5-sonnet-20241022", "claude-3-opus-20240229"),
    "enhancement": ("claude-3-5-haiku-20241022", "claude-3-5-sonnet-20241022"),
}
FALLBACK = {
    "claude-3-opus-20240229": "claude-3-5-sonnet-20241022",
    "claude-3-5-sonnet-20241022": "claude-3-5-haiku-20241022",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022",
}
ERROR_TYPES = ("rate_limit", "timeout", "overloaded", "invalid_response")
BREAKER = "anthropic-api"


@dataclass(frozen=True)
class Track:
    """One event through events.track()."""

    event_type: str
    session_id: str
    user_id: str | None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class ModelCall:
    """One model call through costs.record_model_call() (one model_called event)."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    session_id: str
    user_id: str | None
    duration_ms: float


@dataclass(frozen=True)
class Measure:
    """One duration folded into a metric series (no event)."""

    name: str
    value_ms: float
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    score: float
    confidence: float
    session_id: str
    user_id: str | None


@dataclass(frozen=True)
class Approval:
    approved: bool
    edits_made: int
    session_id: str
    user_id: str | None


@dataclass(frozen=True)
class Rating:
    """kind "satisfaction" (1..5) or "nps" (0..10)."""

    kind: str
    value: int
    session_id: str
    user_id: str | None


Action = Track | ModelCall | Measure | Score | Approval | Rating


class Workload:
    """Endless, reproducible sessions for one seed; iterate sessions() or actions()."""

    def __init__(self, seed: int, users: int = 200) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._users = [f"user-{seed}-{i:04d}" for i in range(users)]
        self._sessions = 0
        self._breaker = "closed"
        self._breaker_left = 0
        self._queue_depth = 5

    def actions(self, sessions: int | None = None) -> Iterator[Action]:
        """Every action of the next `sessions` sessions (endless when None), in order."""
        count = 0
        while sessions is None or count < sessions:
            yield from self.session()
            count += 1

    def session(self) -> list[Action]:
        rng = self._rng
        self._sessions += 1
        sid = f"s-{self.seed}-{self._sessions:07d}"
        uid = self._users[min(int(rng.paretovariate(1.2)) - 1, len(self._users) - 1)]
        out: list[Action] = []
        out.extend(self._background(sid))
        out.append(Track("generation_started", sid, uid))
        if rng.random() < 0.15:
            out.append(Track("cache_hit", sid, uid))
            total = _lognormal(rng, 400.0, 0.4)
            out.append(Measure("time_to_first_byte_ms", _lognormal(rng, 60.0, 0.3)))
            out.append(Measure("time_to_complete_ms", total))
            out.append(Measure("generation_duration_ms", total))
            out.append(Track("generation_completed", sid, uid))
            out.extend(self._user_reaction(sid, uid))
            return out
        out.append(Track("cache_miss", sid, uid))
        elapsed = 0.0
        for index, phase in enumerate(PHASES):
            phase_out, ms, ok = self._phase(sid, uid, phase)
            out.extend(phase_out)
            elapsed += ms
            if index == 0:
                out.append(Measure("time_to_first_byte_ms", _lognormal(rng, 350.0, 0.5)))
            if index == 1:
                out.append(Measure("time_to_first_content_ms", elapsed * rng.uniform(0.3, 0.6)))
            if not ok:
                out.append(Track("generation_failed", sid, uid))
                return out
            if index < 3 and rng.random() < 0.01:
                out.append(Track("generation_canceled", sid, uid))
                return out
        out.append(Measure("time_to_interactive_ms", elapsed * rng.uniform(0.6, 0.9)))
        out.append(Measure("time_to_complete_ms", elapsed))
        out.append(Measure("generation_duration_ms", elapsed))
        out.append(Track("generation_completed", sid, uid))
        out.extend(self._user_reaction(sid, uid))
        return out

    def _phase(self, sid: str, uid: str, phase: str) -> tuple[list[Action], float, bool]:
        rng = self._rng
        out: list[Action] = [Track("phase_started", sid, uid, {"phase": phase})]
        ms = _lognormal(rng, PHASE_MEDIAN_MS[phase], 0.5)
        model = rng.choice(PHASE_MODELS[phase])
        calls = 2 if rng.random() < 0.3 else 1
        for _ in range(calls):
            if rng.random() < 0.04 or (self._breaker == "open" and rng.random() < 0.5):
                error = rng.choice(ERROR_TYPES)
                out.append(
                    Track(
                        "error_occurred",
                        sid,
                        uid,
                        {"error_type": error, "message": f"{error} from model API"},
                    )
                )
                out.append(Track("retry_attempted", sid, uid, {"attempt": 1}))
                if rng.random() < 0.75:
                    out.append(Track("retry_succeeded", sid, uid, {"attempt": 1}))
                else:
                    out.append(Track("retry_failed", sid, uid, {"attempt": 1}))
                    if rng.random() < 0.6:
                        fallback = FALLBACK[model]
                        out.append(
                            Track("fallback_triggered", sid, uid, {"from": model, "to": fallback})
                        )
                        model = fallback
                    else:
                        out.append(Track("phase_failed", sid, uid, {"phase": phase}))
                        out.append(Measure("phase_duration_ms", ms, {"phase": phase}))
                        return out, ms, False
            out.append(self._model_call(sid, uid, model, ms / calls))
        out.append(Track("phase_completed", sid, uid, {"phase": phase}))
        out.append(Measure("phase_duration_ms", ms, {"phase": phase}))
        return out, ms, True

    def _model_call(self, sid: str, uid: str, model: str, duration_ms: float) -> ModelCall:
        rng = self._rng
        prompt = int(_lognormal(rng, 1500.0, 0.6))
        cached = rng.random() < 0.6
        return ModelCall(
            model=model,
            input_tokens=prompt // 4 if cached else prompt,
            output_tokens=int(_lognormal(rng, 600.0, 0.5)),
            cache_write_tokens=0 if cached or rng.random() < 0.5 else prompt // 2,
            cache_read_tokens=prompt - prompt // 4 if cached else 0,
            session_id=sid,
            user_id=uid,
            duration_ms=round(duration_ms * rng.uniform(0.5, 0.9), 3),
        )

    def _user_reaction(self, sid: str, uid: str) -> list[Action]:
        rng = self._rng
        score = round(min(100.0, max(0.0, rng.gauss(78.0, 12.0))), 1)
        out: list[Action] = [Score(score, round(rng.uniform(0.5, 1.0), 3), sid, uid)]
        roll = rng.random()
        if roll < 0.55:
            out.append(Approval(True, 0, sid, uid))
        elif roll < 0.70:
            out.append(Approval(True, rng.randint(1, 5), sid, uid))
        elif roll < 0.80:
            out.append(Approval(False, rng.randint(1, 8), sid, uid))
        elif roll < 0.92:
            out.append(Track("uvp_regenerated", sid, uid))
        else:
            out.append(Track("generation_canceled", sid, uid))
        if roll < 0.70:
            if rng.random() < 0.3:
                out.append(Track("content_copied", sid, uid))
            if rng.random() < 0.1:
                out.append(Track("content_exported", sid, uid))
        if rng.random() < 0.02:
            out.append(Track("model_upgraded", sid, uid))
        if rng.random() < 0.3:
            rating = min(5, max(1, round(rng.gauss(4.0, 1.0))))
            out.append(Rating("satisfaction", rating, sid, uid))
        if rng.random() < 0.1:
            out.append(Rating("nps", rng.choice((3, 6, 7, 8, 9, 9, 10, 10)), sid, uid))
        return out

    def _background(self, sid: str) -> list[Action]:
        """Queue depth now and then; the circuit breaker's occasional episode."""
        rng = self._rng
        out: list[Action] = []
        if self._sessions % 5 == 0:
            self._queue_depth = max(0, self._queue_depth + rng.randint(-3, 3))
            out.append(Track("queue_depth_sampled", sid, None, {"depth": self._queue_depth}))
        if self._breaker == "closed" and rng.random() < 0.003:
            self._breaker, self._breaker_left = "open", rng.randint(3, 10)
            out.append(Track("circuit_breaker_opened", sid, None, {"name": BREAKER}))
        elif self._breaker != "closed":
            self._breaker_left -= 1
            if self._breaker_left == 0 and self._breaker == "open":
                self._breaker, self._breaker_left = "half_open", 2
                out.append(Track("circuit_breaker_half_opened", sid, None, {"name": BREAKER}))
            elif self._breaker_left == 0:
                self._breaker = "closed"
                out.append(Track("circuit_breaker_closed", sid, None, {"name": BREAKER}))
        return out


def event_type(action: Action) -> str | None:
    """The type of the one event an action sends (None for Measure: a metric-series value)."""
    match action:
        case Track():
            return action.event_type
        case ModelCall():
            return "model_called"
        case Score():
            return "quality_scored"
        case Approval():
            return "uvp_approved" if action.approved else "uvp_edited"
        case Rating():
            return "satisfaction_rated" if action.kind == "satisfaction" else "nps_rated"
    return None


def sends_event(action: Action) -> bool:
    return event_type(action) is not None


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return round(rng.lognormvariate(math.log(median), sigma), 3)
