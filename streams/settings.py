"""The worker's settings (`GENPULSE_*`, docs/configuration.md), on top of the shared ones."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from producers.settings import GenPulseSettings
from streams.partial import Targets

DAY_S = 86_400


class WorkerSettings(GenPulseSettings):
    app_id: str = Field("genpulse-worker", description="Consumer group and changelog name base.")
    worker_id: str = Field("", description="Stable name of this worker (transactional id).")
    datadir: str = Field(".genpulse/worker", description="Local RocksDB state.")
    redis_prefix: str = Field("", description="Redis key prefix; empty means the topic prefix.")
    topic_partitions: int = Field(6, ge=1, description="Partitions of events/metrics if created.")
    topic_replication: int = Field(
        1, ge=1, description="Replication factor of every topic (3 on a cluster)."
    )
    topic_min_insync: int = Field(
        1, ge=1, description="min.insync.replicas of every topic (2 on a cluster)."
    )
    topic_retention_s: int = Field(
        7 * DAY_S, ge=1, description="Retention of events, metrics, dead letters, roll-ups."
    )
    batch_max_records: int = Field(20_000, ge=1)
    batch_wait_ms: int = Field(100, ge=0)
    snapshot_interval_s: float = Field(1.0, gt=0)
    minute_retention_s: int = Field(DAY_S)
    hour_retention_s: int = Field(30 * DAY_S)
    day_retention_s: int = Field(90 * DAY_S)
    cost_timezone: str = Field("UTC")
    session_idle_s: int = Field(1800, description="Quality per-session state expires after this.")
    in_flight_stale_s: int = Field(600, description="A generation without an end is dropped then.")
    target_ttfb_ms: float = Field(500.0)
    target_fcp_ms: float = Field(2000.0)
    target_tti_ms: float = Field(7000.0)
    target_complete_ms: float = Field(15000.0)
    max_future_skew_s: int = Field(3600, description="Events further ahead of Kafka time: DLQ.")
    dedup_horizon_s: int = Field(
        DAY_S,
        ge=0,
        description="A repeated event_id within this much event time is dropped; 0 turns it off.",
    )
    slice_top_k: int = Field(
        1000,
        ge=1,
        description="Values kept per bucket, partition and high-cardinality dimension (user, "
        "each tag key); later ones are folded into `other` (docs/slicing.md).",
    )
    changelog_compression: Literal["none", "lz4", "gzip", "snappy", "zstd"] = Field(
        # zstd, not lz4: aiokafka compresses lz4 at level 9 (its slow HC mode), which cost
        # the worker ~10 % of its instructions; zstd at Kafka's level 3 is faster and smaller
        "zstd",
        description="Compression of the worker's changelog writes (docs/architecture.md).",
    )
    transaction_timeout_ms: int = Field(15_000)
    session_timeout_ms: int = Field(
        10_000, description="Consumer-group session: how soon a killed worker's partitions move."
    )

    @model_validator(mode="after")
    def _insync_fits(self) -> Self:
        if self.topic_min_insync > self.topic_replication:
            raise ValueError(
                f"GENPULSE_TOPIC_MIN_INSYNC ({self.topic_min_insync}) is larger than "
                f"GENPULSE_TOPIC_REPLICATION ({self.topic_replication}): no write could succeed"
            )
        return self

    @property
    def key_prefix(self) -> str:
        return self.redis_prefix or self.topic_prefix

    @property
    def targets(self) -> Targets:
        return Targets(
            self.target_ttfb_ms, self.target_fcp_ms, self.target_tti_ms, self.target_complete_ms
        )

    def internal_topic(self, name: str) -> str:
        """Worker-private topics: `<prefix>.worker-<name>`."""
        return f"{self.topic_prefix}.worker-{name}"
