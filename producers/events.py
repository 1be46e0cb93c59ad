"""The event vocabulary: every kind of thing the product reports, in one enum.

The first 24 members are the specification's `EventType`, with its spelling and in its
order (`SEED_EVENT_TYPES`). The rest are what the SDK itself needs beyond them: model
calls, phase failures, the time-to-X marks, content actions, quality scores, ratings,
circuit-breaker recovery, queue depth and metric batches.

Names that earlier versions used for a specification type (`generation_cancelled`,
`user_approved`, ...) are accepted on the wire and by the SDK as aliases and decode to the
canonical name (`EVENT_ALIASES`), so old producers keep working and nothing is counted twice
under two names.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    # -- the specification's 24 types, in its order ----------------------------------
    # generation
    GENERATION_STARTED = "generation_started"
    PHASE_STARTED = "phase_started"
    PHASE_COMPLETED = "phase_completed"
    GENERATION_COMPLETED = "generation_completed"
    GENERATION_FAILED = "generation_failed"
    GENERATION_CANCELED = "generation_canceled"
    # user actions
    UVP_APPROVED = "uvp_approved"
    UVP_EDITED = "uvp_edited"
    UVP_REGENERATED = "uvp_regenerated"
    PROFILE_SELECTED = "profile_selected"
    PROFILE_DESELECTED = "profile_deselected"
    TRANSFORMATION_EDITED = "transformation_edited"
    BENEFIT_REORDERED = "benefit_reordered"
    # performance
    CACHE_HIT = "cache_hit"
    CACHE_MISS = "cache_miss"
    MODEL_UPGRADED = "model_upgraded"
    STREAM_STARTED = "stream_started"
    STREAM_COMPLETED = "stream_completed"
    # errors
    ERROR_OCCURRED = "error_occurred"
    RETRY_ATTEMPTED = "retry_attempted"
    RETRY_SUCCEEDED = "retry_succeeded"
    RETRY_FAILED = "retry_failed"
    FALLBACK_TRIGGERED = "fallback_triggered"
    CIRCUIT_BREAKER_OPENED = "circuit_breaker_opened"
    # -- SDK additions ----------------------------------------------------------------
    MODEL_CALLED = "model_called"
    PHASE_FAILED = "phase_failed"
    FIRST_BYTE = "first_byte"
    FIRST_CONTENT = "first_content"
    INTERACTIVE = "interactive"
    CONTENT_COPIED = "content_copied"
    CONTENT_EXPORTED = "content_exported"
    QUALITY_SCORED = "quality_scored"
    SATISFACTION_RATED = "satisfaction_rated"
    NPS_RATED = "nps_rated"
    CIRCUIT_BREAKER_HALF_OPENED = "circuit_breaker_half_opened"
    CIRCUIT_BREAKER_CLOSED = "circuit_breaker_closed"
    QUEUE_DEPTH_SAMPLED = "queue_depth_sampled"
    METRIC_BATCH = "metric_batch"


SEED_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)[:24]
"""The specification's own types, in its order (generation_started ... circuit_breaker_opened)."""

EVENT_ALIASES: dict[str, EventType] = {
    "generation_cancelled": EventType.GENERATION_CANCELED,
    "user_abandoned": EventType.GENERATION_CANCELED,
    "user_approved": EventType.UVP_APPROVED,
    "user_edited": EventType.UVP_EDITED,
    "user_regenerated": EventType.UVP_REGENERATED,
    "user_upgraded": EventType.MODEL_UPGRADED,
}
"""Earlier names of specification types; accepted everywhere, decoded to the canonical one."""


def canonical_type(name: str) -> str:
    """The canonical event type for `name` (an alias resolved; anything else unchanged)."""
    alias = EVENT_ALIASES.get(name)
    return name if alias is None else alias.value
