"""QualityTracker: output scores, user actions and ratings, each one event.

Mapping (also in docs/sdk.md): record_quality_score -> quality_scored; record_approval
(approved=True) -> uvp_approved, (approved=False) -> uvp_edited, both with data.edits_made;
record_user_action("approved"|"edited"|"regenerated"|"abandoned"|"upgraded"|"copied"|
"exported") -> user_* / content_*; record_satisfaction -> satisfaction_rated; record_nps ->
nps_rated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from producers.events import EventType
from producers.pipeline import Pipeline

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
        """approved -> uvp_approved, else uvp_edited; both carry data.edits_made."""
        if type(edits_made) is not int or edits_made < 0:
            self._pipeline.problems.report(
                "invalid_edits", f"edits_made {edits_made!r:.40} is not an integer >= 0"
            )
            return
        event_type = EventType.UVP_APPROVED if approved else EventType.UVP_EDITED
        self._pipeline.emit(event_type.value, {"edits_made": edits_made}, session_id, user_id)

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


def _in_range(value: object, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )
