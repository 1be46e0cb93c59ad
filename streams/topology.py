"""The topology: every topic genpulse uses, and what each must look like on the broker.

One definition, read by the worker at start, by `genpulse topics` and by docs/topics.md.
Pure: it turns settings into topic specs, and a broker's observed state into problems;
streams/topics.py does the talking to Kafka. Why changelogs "follow" their source: the
aggregator writes the state of source partition i to changelog partition i, so a changelog
with fewer partitions cannot hold (or restore) the state of the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.settings import WorkerSettings

DAY_MS = 86_400_000
ALERTS_RETENTION_MS = 30 * DAY_MS

ERROR, WARNING = "error", "warning"
FIX_CREATE = "run `genpulse topics create`"
FIX_REPLICATION = (
    "raise it with kafka-reassign-partitions (docs/topics.md, 'Replication'), "
    "or lower GENPULSE_TOPIC_REPLICATION"
)


@dataclass(frozen=True)
class TopicSpec:
    """What one topic must be. `follows` names the topic whose partition count it copies."""

    name: str
    role: str
    partitions: int
    replication: int
    min_insync: int
    compact: bool = False
    retention_ms: int | None = None  # delete-policy topics only
    follows: str | None = None
    single: bool = False  # read as partition 0 only: exactly one partition
    purpose: str = ""

    @property
    def cleanup_policy(self) -> str:
        return "compact" if self.compact else "delete"

    def configs(self) -> dict[str, str]:
        """Topic configs set at creation."""
        out = {"cleanup.policy": self.cleanup_policy, "min.insync.replicas": str(self.min_insync)}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        return out


@dataclass(frozen=True)
class Observed:
    """One topic as the broker has it. `replication` is the smallest over its partitions."""

    partitions: int
    replication: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    topic: str
    what: str
    fix: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"topic {self.topic}: {self.what}; {self.fix}"


def topology(settings: WorkerSettings) -> list[TopicSpec]:
    """Every topic, sources before the changelogs that follow them."""
    n, rf, isr = settings.topic_partitions, settings.topic_replication, settings.topic_min_insync
    keep = settings.topic_retention_s * 1000

    def spec(name: str, role: str, partitions: int, purpose: str, **kw: object) -> TopicSpec:
        return TopicSpec(name, role, partitions, rf, isr, purpose=purpose, **kw)  # type: ignore[arg-type]

    t, w = settings.topic, settings.internal_topic
    return [
        spec(t("events"), "events", n, "contract events (SDK, /v1/collect)", retention_ms=keep),
        spec(t("metrics"), "metrics", n, "metric batches (SDK)", retention_ms=keep),
        spec(t("control"), "control", 1, "budgets and alert rules", compact=True, single=True),
        spec(t("budget-state"), "budget-state", 1, "budget state per scope", compact=True),
        spec(
            t("alerts"),
            "alerts",
            1,
            "fired/resolved alerts",
            retention_ms=ALERTS_RETENTION_MS,
            single=True,
        ),
        spec(t("dlq"), "dlq", n, "dead letters (worker, API)", retention_ms=keep),
        spec(
            w("rollup"),
            "worker-rollup",
            1,
            "aggregator to controller",
            retention_ms=keep,
            single=True,
        ),
        spec(
            w("controller-changelog"),
            "worker-controller-changelog",
            1,
            "controller state",
            compact=True,
            single=True,
        ),
        spec(
            w("events-changelog"),
            "worker-events-changelog",
            n,
            "aggregator rows of events",
            compact=True,
            follows=t("events"),
        ),
        spec(
            w("metrics-changelog"),
            "worker-metrics-changelog",
            n,
            "aggregator rows of metrics",
            compact=True,
            follows=t("metrics"),
        ),
        spec(
            w("dlq-changelog"),
            "worker-dlq-changelog",
            n,
            "dead-letter counts by reason",
            compact=True,
            follows=t("dlq"),
        ),
    ]


def creation_partitions(spec: TopicSpec, observed: dict[str, Observed]) -> int | None:
    """Partitions to create `spec` with; None while its source's count is not yet known."""
    if spec.follows is None:
        return spec.partitions
    source = observed.get(spec.follows)
    if source is None or source.partitions <= 0:
        return None  # never create from a count of 0 read back too early
    return source.partitions


def problems(specs: list[TopicSpec], observed: dict[str, Observed]) -> list[Problem]:
    """Everything about the broker's topics that differs from the definition."""
    found: list[Problem] = []
    for spec in specs:
        have = observed.get(spec.name)
        if have is None:
            found.append(Problem(spec.name, "missing", FIX_CREATE))
            continue
        found.extend(_partition_problems(spec, have, observed))
        policy = have.configs.get("cleanup.policy", "")
        if spec.compact and "compact" not in policy.split(","):
            found.append(
                Problem(
                    spec.name, f"cleanup.policy is {policy or '?'}, must be compact", FIX_CREATE
                )
            )
        if have.replication < spec.replication:
            found.append(
                Problem(
                    spec.name,
                    f"replication factor {have.replication}, GENPULSE_TOPIC_REPLICATION "
                    f"is {spec.replication}",
                    FIX_REPLICATION,
                )
            )
        insync = have.configs.get("min.insync.replicas")
        if insync is not None and int(insync) < spec.min_insync:
            found.append(
                Problem(
                    spec.name,
                    f"min.insync.replicas is {insync}, GENPULSE_TOPIC_MIN_INSYNC "
                    f"is {spec.min_insync}",
                    FIX_CREATE,
                )
            )
        retention = have.configs.get("retention.ms")
        if spec.retention_ms is not None and retention not in (None, str(spec.retention_ms)):
            found.append(
                Problem(
                    spec.name,
                    f"retention.ms is {retention}, the definition says {spec.retention_ms}",
                    "fine if chosen on purpose",
                    WARNING,
                )
            )
    return found


def _partition_problems(
    spec: TopicSpec, have: Observed, observed: dict[str, Observed]
) -> list[Problem]:
    if spec.follows is not None:
        source = observed.get(spec.follows)
        if source is not None and have.partitions < source.partitions:
            return [
                Problem(
                    spec.name,
                    f"{_count(have.partitions)} but its source {spec.follows} has "
                    f"{source.partitions} (the state of the others cannot be kept)",
                    f"{FIX_CREATE} (adds the missing, empty partitions)",
                )
            ]
        return []
    if spec.single and have.partitions != 1:
        return [
            Problem(
                spec.name,
                f"{_count(have.partitions)}, must be 1 (only partition 0 is read)",
                "delete it and run `genpulse topics create` (docs/topics.md, 'Recovery')",
            )
        ]
    if have.partitions < spec.partitions:
        return [
            Problem(
                spec.name,
                f"{_count(have.partitions)}, GENPULSE_TOPIC_PARTITIONS is {spec.partitions}",
                "add partitions with kafka-topics --alter, then `genpulse topics create`, "
                "or lower GENPULSE_TOPIC_PARTITIONS",
                WARNING,
            )
        ]
    return []


def _count(partitions: int) -> str:
    return "1 partition" if partitions == 1 else f"{partitions} partitions"


def errors(found: list[Problem]) -> list[Problem]:
    return [p for p in found if p.severity == ERROR]
