"""QualityTracker: output scores, user actions and ratings, each one event.

Mapping (also in docs/sdk.md): record_quality_score -> quality_scored; record_approval
(approved=True, n) -> uvp_approved {edits_made: n} (n > 0: approved after edits);
record_approval(False, n) -> uvp_approved {approved: false, edits_made: n}: a rejection,
not an approval and not an edit (the generation stays open); record_user_action(
"approved"|"edited"|"regenerated"|"abandoned"|"upgraded"|"copied"|"exported") -> uvp_* /
generation_canceled / model_upgraded / content_*; record_satisfaction -> satisfaction_rated;
record_nps -> nps_rated.

get_quality_metrics(), get_acceptance_rate() and get_edit_rate() answer for this process
(the events it tracked, producers/local_tally.py); the fleet's per-generation rates are
the metrics API's (`MetricsClient.quality()`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ddsketch import DDSketch

from producers.events import EventType
from producers.pipeline import Pipeline
from producers.shapes import QualityMetrics, ScoreDistribution

USER_ACTIONS: dict[str, str] = {
    "approved": EventType.UVP_APPROVED.value,
    "edited": EventType.UVP_EDITED.value,
    "regenerated": EventType.UVP_REGENERATED.value,
    "abandoned": EventType.GENERATION_CANCELED.value,
    "upgraded": EventType.MODEL_UPGRADED.value,
    "copied": EventType.CONTENT_COPIED.value,
    "exported": EventType.CONTENT_EXPORTED.value,
}
USER_ACTIONS.update({event_type: event_type for event_type in list(USER_ACTIONS.values())})


class QualityTracker:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def record_quality_score(
        self,
        score: float,
        confidence: float | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        dimensions: Mapping[str, float] | None = None,
    ) -> None:
        """An output's quality score (0-100) and the scorer's confidence (0-1)."""
        if not _in_range(score, 0, 100):
            self._pipeline.problems.report("invalid_score", f"score {score!r:.40} not in 0..100")
            return
        data: dict[str, Any] = {"score": score}
        if confidence is not None:
            if not _in_range(confidence, 0, 1):
                self._pipeline.problems.report(
                    "invalid_score", f"confidence {confidence!r:.40} not in 0..1"
                )
                return
            data["confidence"] = confidence
        if dimensions:
            data["dimensions"] = dict(dimensions)
        self._pipeline.emit(EventType.QUALITY_SCORED.value, data, session_id, user_id)

    def record_user_action(
        self,
        action: str,
        session_id: str | None = None,
        user_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """approved, edited, regenerated, abandoned, upgraded, copied or exported."""
        event_type = USER_ACTIONS.get(action) if isinstance(action, str) else None
        if event_type is None:
            self._pipeline.problems.report(
                "unknown_action", f"user action {action!r:.40}; use one of {sorted(USER_ACTIONS)}"
            )
            return
        self._pipeline.emit(event_type, dict(data) if data else None, session_id, user_id)

    def record_approval(
        self,
        approved: bool,
        edits_made: int = 0,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """The user's verdict on a generation, as the specification means it.

        approved=True: uvp_approved {edits_made} (0: approved without edits, more: approved
        after edits). approved=False: a rejection, uvp_approved {approved: false,
        edits_made}: not an approval and not an edit; the generation stays open (the
        worker counts it in `rejections`, docs/metrics.md).
        """
        if type(edits_made) is not int or edits_made < 0:
            self._pipeline.problems.report(
                "invalid_edits", f"edits_made {edits_made!r:.40} is not an integer >= 0"
            )
            return
        data: dict[str, Any] = {"edits_made": edits_made}
        if not approved:
            data["approved"] = False
        self._pipeline.emit(EventType.UVP_APPROVED.value, data, session_id, user_id)

    def record_satisfaction(
        self, rating: int, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        """A 1..5 satisfaction rating."""
        if type(rating) is not int or not 1 <= rating <= 5:
            self._pipeline.problems.report(
                "invalid_rating", f"satisfaction {rating!r:.40} not 1..5"
            )
            return
        self._pipeline.emit(
            EventType.SATISFACTION_RATED.value, {"rating": rating}, session_id, user_id
        )

    def record_nps(
        self, score: int, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        """A 0..10 net-promoter score."""
        if type(score) is not int or not 0 <= score <= 10:
            self._pipeline.problems.report("invalid_rating", f"NPS score {score!r:.40} not 0..10")
            return
        self._pipeline.emit(EventType.NPS_RATED.value, {"score": score}, session_id, user_id)

    def get_quality_metrics(self) -> QualityMetrics:
        """The specification's QualityMetrics from the events this process tracked.

        Rates are shares of this process's completed generations (capped at 1). Each
        approval is one outcome: without edits (edits_made 0 and no uvp_edited,
        transformation_edited or benefit_reordered in its session since the completion) or
        after edits.
        """
        t = self._pipeline.tally()
        completed = t.by_type["generation_completed"]
        regenerated = t.by_type["uvp_regenerated"]
        canceled = t.by_type["generation_canceled"]
        upgrades = t.by_type["model_upgraded"]
        scored = sum(t.score_bands)
        rated = sum(t.ratings)
        voted = sum(t.nps)
        excellent, good, fair, poor = t.score_bands
        promoters, passives, detractors = t.nps

        def share(count: int) -> float | None:
            return min(1.0, count / completed) if completed else None

        def median(sketch: DDSketch) -> float | None:
            return sketch.get_quantile_value(0.5) if sketch.count else None

        return QualityMetrics(
            average_quality_score=t.score_sum / scored if scored else None,
            score_distribution=ScoreDistribution(
                excellent=excellent, good=good, fair=fair, poor=poor
            ),
            acceptance_rate=share(t.approved_without_edit),
            edit_rate=share(t.approved_after_edit),
            regeneration_rate=share(regenerated),
            abandonment_rate=share(canceled),
            average_confidence=(
                t.confidence_sum / t.confidence_count if t.confidence_count else None
            ),
            low_confidence_count=t.low_confidence,
            upgrade_rate=share(upgrades),
            time_to_approval_ms=median(t.to_approval_ms),
            time_to_first_edit_ms=median(t.to_first_edit_ms),
            user_satisfaction=(
                sum((i + 1) * n for i, n in enumerate(t.ratings)) / rated if rated else None
            ),
            nps=100.0 * (promoters - detractors) / voted if voted else None,
            generations_completed=completed,
            approved_without_edit=t.approved_without_edit,
            approved_after_edit=t.approved_after_edit,
            rejections=t.rejected,
            regenerations=regenerated,
            abandonments=canceled,
            upgrades=upgrades,
            satisfaction_distribution={str(i + 1): n for i, n in enumerate(t.ratings)},
            nps_promoters=promoters,
            nps_passives=passives,
            nps_detractors=detractors,
        )

    def get_acceptance_rate(self) -> float | None:
        """Share of this process's completed generations approved without edits (0..1)."""
        return self.get_quality_metrics()["acceptance_rate"]

    def get_edit_rate(self) -> float | None:
        """Share of this process's completed generations edited before approval (0..1)."""
        return self.get_quality_metrics()["edit_rate"]


def _in_range(value: object, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )
