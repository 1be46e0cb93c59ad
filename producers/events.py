"""The event vocabulary: every kind of thing the product reports, in one enum.

The first 24 members are the seed's EventType (generation lifecycle, phases, time-to-X
marks, cache, user actions, system health). The rest are what the SDK itself needs to
report model calls, quality scores, ratings, gauges and circuit-breaker recovery.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    # -- the seed's 24 types --------------------------------------------------------
    GENERATION_STARTED = "generation_started"
    GENERATION_COMPLETED = "generation_completed"
    GENERATION_FAILED = "generation_failed"
    GENERATION_CANCELLED = "generation_cancelled"
    PHASE_STARTED = "phase_started"
    PHASE_COMPLETED = "phase_completed"
    PHASE_FAILED = "phase_failed"
    FIRST_BYTE = "first_byte"
    FIRST_CONTENT = "first_content"
    INTERACTIVE = "interactive"
    CACHE_HIT = "cache_hit"
    CACHE_MISS = "cache_miss"
    USER_APPROVED = "user_approved"
    USER_EDITED = "user_edited"
    USER_REGENERATED = "user_regenerated"
    USER_ABANDONED = "user_abandoned"
    USER_UPGRADED = "user_upgraded"
    CONTENT_COPIED = "content_copied"
    CONTENT_EXPORTED = "content_exported"
    ERROR_OCCURRED = "error_occurred"
    RETRY_ATTEMPTED = "retry_attempted"
    RETRY_SUCCEEDED = "retry_succeeded"
    FALLBACK_TRIGGERED = "fallback_triggered"
    CIRCUIT_BREAKER_OPENED = "circuit_breaker_opened"
    # -- SDK additions ----------------------------------------------------------------
    RETRY_FAILED = "retry_failed"
    CIRCUIT_BREAKER_HALF_OPENED = "circuit_breaker_half_opened"
    CIRCUIT_BREAKER_CLOSED = "circuit_breaker_closed"
    MODEL_CALLED = "model_called"
    QUALITY_SCORED = "quality_scored"
    SATISFACTION_RATED = "satisfaction_rated"
    NPS_RATED = "nps_rated"
    QUEUE_DEPTH_SAMPLED = "queue_depth_sampled"
    METRIC_BATCH = "metric_batch"


SEED_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)[:24]
"""The seed's own types, in the seed's order (generation_started ... circuit_breaker_opened)."""
