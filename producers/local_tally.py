"""This process's own tally of the events it tracked: counts by type and a few data figures.

It feeds the specification's get_* methods (cache hits, generations in flight, approvals,
quality scores, ratings) without touching the caller's path: the buffer hands every record
to `add()` when the sender takes it (or when it is dropped), on the sender thread, and
`EventBuffer.tally()` adds the records still waiting when someone asks. What the whole
fleet did is the worker's answer (the metrics API, `api.client.MetricsClient`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from ddsketch import DDSketch

from producers.buffer import Record
from producers.sketch import new_sketch

MAX_OPEN_SESSIONS = 10_000
"""Sessions whose last completion or edit is remembered (for time to approval / edits)."""

EDIT_TYPES = frozenset({"uvp_edited", "transformation_edited", "benefit_reordered"})


@dataclass
class SessionMarks:
    completed_s: float = 0.0  # last generation_completed
    edited: bool = False  # an edit since that completion
    first_edit_seen: bool = False


@dataclass
class Tally:
    """Counts and figures of the records added so far (one copy per reader)."""

    by_type: Counter[str] = field(default_factory=Counter)
    approved_without_edit: int = 0
    approved_after_edit: int = 0
    rejected: int = 0
    score_sum: float = 0.0
    score_bands: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # exc, good, fair, poor
    confidence_sum: float = 0.0
    confidence_count: int = 0
    low_confidence: int = 0
    ratings: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # 1..5
    nps: list[int] = field(default_factory=lambda: [0, 0, 0])  # promoters, passives, detractors
    queue_depth: int = 0
    to_approval_ms: DDSketch = field(default_factory=new_sketch)
    to_first_edit_ms: DDSketch = field(default_factory=new_sketch)

    def copy(self) -> Tally:
        other = Tally(
            by_type=Counter(self.by_type),
            approved_without_edit=self.approved_without_edit,
            approved_after_edit=self.approved_after_edit,
            rejected=self.rejected,
            score_sum=self.score_sum,
            score_bands=list(self.score_bands),
            confidence_sum=self.confidence_sum,
            confidence_count=self.confidence_count,
            low_confidence=self.low_confidence,
            ratings=list(self.ratings),
            nps=list(self.nps),
            queue_depth=self.queue_depth,
        )
        other.to_approval_ms.merge(self.to_approval_ms)
        other.to_first_edit_ms.merge(self.to_first_edit_ms)
        return other


_WITH_DATA = frozenset(
    {
        "generation_completed",
        "uvp_approved",
        "quality_scored",
        "satisfaction_rated",
        "nps_rated",
        "queue_depth_sampled",
        *EDIT_TYPES,
    }
)


class LocalTally:
    """Folds records into a `Tally`, each once, in the order they were tracked.

    Callers hold the buffer's lock.
    """

    def __init__(self) -> None:
        self.tally = Tally()
        self._sessions: OrderedDict[str, SessionMarks] = OrderedDict()

    def add(self, record: Record) -> None:
        kind = record[0]
        t = self.tally
        t.by_type[kind] += 1
        if kind not in _WITH_DATA:
            return
        _, ts, session_id, _, items = record[:5]
        data = dict(items) if items else {}
        if kind == "generation_completed":
            marks = self._session(session_id)
            marks.completed_s = ts
            marks.edited = marks.first_edit_seen = False
        elif kind in EDIT_TYPES:
            marks = self._session(session_id)
            if marks.completed_s and not marks.first_edit_seen:
                t.to_first_edit_ms.add(max(0.0, (ts - marks.completed_s) * 1000))
            marks.edited = marks.first_edit_seen = True
        elif kind == "uvp_approved" and data.get("approved", True) is False:
            t.rejected += 1  # a rejection: not an approval, not an edit; still open
        elif kind == "uvp_approved":
            marks = self._session(session_id)
            edits = data.get("edits_made", 0)
            if marks.edited or (type(edits) is int and edits > 0):
                t.approved_after_edit += 1
            else:
                t.approved_without_edit += 1
            if marks.completed_s:
                t.to_approval_ms.add(max(0.0, (ts - marks.completed_s) * 1000))
            marks.edited = False
        elif kind == "quality_scored":
            _score(t, data)
        elif kind == "satisfaction_rated":
            rating = data.get("rating")
            if type(rating) is int and 1 <= rating <= 5:
                t.ratings[rating - 1] += 1
        elif kind == "nps_rated":
            score = data.get("score")
            if type(score) is int and 0 <= score <= 10:
                t.nps[0 if score >= 9 else 1 if score >= 7 else 2] += 1
        elif kind == "queue_depth_sampled":
            depth = data.get("depth")
            if type(depth) is int:
                t.queue_depth = depth

    def _session(self, session_id: str) -> SessionMarks:
        marks = self._sessions.get(session_id)
        if marks is None:
            marks = self._sessions[session_id] = SessionMarks()
            if len(self._sessions) > MAX_OPEN_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        return marks


def _score(t: Tally, data: dict[str, object]) -> None:
    score = data.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return
    t.score_sum += score
    t.score_bands[0 if score >= 90 else 1 if score >= 70 else 2 if score >= 50 else 3] += 1
    confidence = data.get("confidence")
    if isinstance(confidence, int | float) and not isinstance(confidence, bool):
        t.confidence_sum += confidence
        t.confidence_count += 1
        t.low_confidence += confidence < 0.7
