"""Applies the topology (streams/topology.py) to a broker and reads back what it has.

Safe with several workers starting at once: each creates what is missing (a topic another
one created first is fine), then re-reads and waits until every topic shows its partitions
and leaders. A partition count read back as 0 right after a creation is waited out, never
used: a changelog created from it would be refused or, worse, auto-created with one
partition. Every metadata request here asks for all topics, which never auto-creates one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from streams.settings import WorkerSettings
from streams.topology import (
    FIX_CREATE,
    Observed,
    Problem,
    TopicSpec,
    creation_partitions,
    errors,
    problems,
    topology,
)

SOURCES = ("events", "metrics", "dlq")  # the aggregator's inputs, each with a changelog
TOPIC_ALREADY_EXISTS = 36
DYNAMIC_TOPIC_CONFIG = 1  # describe_configs' config_source of a per-topic override
CHECKED_CONFIGS = ("cleanup.policy", "min.insync.replicas", "retention.ms")
READY_TIMEOUT_S = 30.0


class TopologyError(RuntimeError):
    """The topics differ from the definition, or could not be made to match: one line."""


class KafkaUnreachable(RuntimeError):
    """No broker answered at the bootstrap address."""


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise KafkaUnreachable(
            f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}); start it "
            "(`genpulse dev up`) or point GENPULSE_KAFKA_BOOTSTRAP at a running broker"
        ) from None
    try:
        yield admin
    finally:
        await admin.close()


async def observe(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> dict[str, Observed]:
    """The wanted topics the broker has (partitions, smallest replication, checked configs);
    a topic still without partitions or leaders counts as present with 0 partitions."""
    wanted = {spec.name for spec in specs}
    found = {t["topic"]: t for t in await admin.describe_topics() if t["topic"] in wanted}
    configs = await _configs(admin, sorted(found))
    out = {}
    for name, meta in found.items():
        parts = meta["partitions"]
        ready = (
            meta["error_code"] == 0
            and parts
            and all(p["leader"] >= 0 for p in parts)
            and name in configs  # configs of a topic being created may not answer yet
        )
        out[name] = Observed(
            partitions=len(parts) if ready else 0,
            replication=min((len(p["replicas"]) for p in parts), default=0),
            configs={k: v for k, (v, _) in configs.get(name, {}).items()},
        )
    return out


async def _configs(
    admin: AIOKafkaAdminClient, names: list[str]
) -> dict[str, dict[str, tuple[str, bool]]]:
    """name -> config -> (value, set on the topic itself)."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, None) for name in names]
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for response in await admin.describe_configs(resources):
        for code, _, _, name, entries in response.resources:
            if code == 0:
                out[name] = {e[0]: (e[1], e[3] == DYNAMIC_TOPIC_CONFIG) for e in entries}
    return out


async def apply(
    settings: WorkerSettings, *, repair: bool, timeout_s: float = READY_TIMEOUT_S
) -> tuple[list[TopicSpec], dict[str, Observed], list[Problem]]:
    """Create what is missing (changelogs once their sources show partitions); with
    `repair`, also fix what is safe to fix in place. Returns the state read back after."""
    specs = topology(settings)
    async with admin_client(settings.kafka_bootstrap) as admin:
        observed = await _wait_ready(admin, specs, set(), timeout_s)
        while True:  # sources first; their changelogs once their partition counts are known
            missing = [s for s in specs if s.name not in observed]
            todo = [(s, n) for s in missing if (n := creation_partitions(s, observed))]
            if not todo:
                break
            await _create(admin, todo)
            observed = await _wait_ready(admin, specs, {s.name for s, _ in todo}, timeout_s)
        if repair and _repairable(problems(specs, observed)):
            await _repair(admin, specs, observed)
            deadline = time.monotonic() + timeout_s
            while True:  # altered configs reach the broker's answers a moment later
                observed = await _wait_ready(admin, specs, set(observed), timeout_s)
                if not _repairable(problems(specs, observed)) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        return specs, observed, problems(specs, observed)


def _repairable(found: list[Problem]) -> list[Problem]:
    return [p for p in errors(found) if p.fix.startswith(FIX_CREATE)]


async def _wait_ready(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], created: set[str], timeout_s: float
) -> dict[str, Observed]:
    """Re-read until the topics just `created` show up and no topic shows 0 partitions
    (one that is being created right now, perhaps by another worker)."""
    deadline = time.monotonic() + timeout_s
    while True:
        observed = await observe(admin, specs)
        pending = sorted(created - set(observed))
        pending += sorted(name for name, o in observed.items() if o.partitions == 0)
        if not pending:
            return observed
        if time.monotonic() > deadline:
            raise TopologyError(
                f"topic {pending[0]}: still has no partitions with leaders after {timeout_s:.0f}s;"
                " check the brokers' health, then run `genpulse topics check`"
            )
        await asyncio.sleep(0.1)


async def _create(admin: AIOKafkaAdminClient, todo: list[tuple[TopicSpec, int]]) -> None:
    if not todo:
        return
    response = await admin.create_topics(
        [NewTopic(s.name, n, s.replication, topic_configs=s.configs()) for s, n in todo]
    )
    for name, code, message in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):  # already there: another worker was first
            raise TopologyError(f"topic {name}: cannot create it: {message}; {_hint(message)}")


def _hint(message: str | None) -> str:
    if message and "replication factor" in message:
        return "lower GENPULSE_TOPIC_REPLICATION to the number of brokers, or add brokers"
    return "check the broker's log and your permissions"


async def _repair(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], observed: dict[str, Observed]
) -> None:
    """Add a changelog's missing partitions (they hold no state: nothing could be written to
    them) and reset a compacted topic's policy or a too-low min.insync.replicas."""
    grow = {}
    for spec in specs:
        have, source = observed.get(spec.name), observed.get(spec.follows or "")
        if have and source and have.partitions < source.partitions:
            grow[spec.name] = NewPartitions(source.partitions)
    if grow:
        await admin.create_partitions(grow)
    current = await _configs(admin, sorted(s.name for s in specs if s.name in observed))
    alter = []
    for spec in specs:
        if spec.name not in current:
            continue
        values = {k: v for k, (v, own) in current[spec.name].items() if own}
        fixed = dict(values)
        if spec.compact and "compact" not in current[spec.name]["cleanup.policy"][0]:
            fixed["cleanup.policy"] = "compact"
        if int(current[spec.name]["min.insync.replicas"][0]) < spec.min_insync:
            fixed["min.insync.replicas"] = str(spec.min_insync)
        if fixed != values:  # AlterConfigs replaces every override: send the kept ones too
            alter.append(ConfigResource(ConfigResourceType.TOPIC, spec.name, fixed))
    if alter:
        for response in await admin.alter_configs(alter):
            for code, message, _, name in response.resources:
                if code:
                    raise TopologyError(f"topic {name}: cannot change its configs: {message}")


async def ensure_topics(settings: WorkerSettings) -> dict[str, int]:
    """The worker's start: create what is missing, then refuse any mismatch (one line).
    Returns the partition count of each source the aggregator reads."""
    _, observed, found = await apply(settings, repair=False)
    bad = errors(found)
    if bad:
        more = f" (and {len(bad) - 1} more: `genpulse topics check`)" if len(bad) > 1 else ""
        raise TopologyError(f"{bad[0]}{more}")
    return {kind: observed[settings.topic(kind)].partitions for kind in SOURCES}


async def inspect(
    settings: WorkerSettings,
) -> tuple[list[TopicSpec], dict[str, Observed], list[Problem]]:
    """Compare without changing anything."""
    specs = topology(settings)
    async with admin_client(settings.kafka_bootstrap) as admin:
        observed = await observe(admin, specs)
        return specs, observed, problems(specs, observed)


async def auto_creating_brokers(settings: WorkerSettings) -> list[int]:
    """Brokers with auto.create.topics.enable=true: any client touching a missing topic
    there creates it with the broker's defaults (one partition, not compacted)."""
    async with admin_client(settings.kafka_bootstrap) as admin:
        brokers = [b["node_id"] for b in (await admin.describe_cluster())["brokers"]]
        flag = {"auto.create.topics.enable": None}
        resources = [ConfigResource(ConfigResourceType.BROKER, str(b), flag) for b in brokers]
        out = []
        for response in await admin.describe_configs(resources):
            for code, _, _, name, entries in response.resources:
                if code == 0 and any(e[0] in flag and e[1] == "true" for e in entries):
                    out.append(int(name))
        return sorted(out)


def describe_rows(
    specs: list[TopicSpec], observed: dict[str, Observed], found: list[Problem]
) -> list[dict[str, Any]]:
    """One row per topic: the definition beside what the broker has."""
    rows = []
    for spec in specs:
        have = observed.get(spec.name)
        wanted = f"={spec.follows}" if spec.follows else str(spec.partitions)
        rows.append(
            {
                "topic": spec.name,
                "partitions": wanted,
                "has_partitions": have.partitions if have else None,
                "replication": spec.replication,
                "has_replication": have.replication if have else None,
                "cleanup": spec.cleanup_policy,
                "has_cleanup": have.configs.get("cleanup.policy") if have else None,
                "min_insync": spec.min_insync,
                "has_min_insync": have.configs.get("min.insync.replicas") if have else None,
                "retention_ms": spec.retention_ms,
                "has_retention_ms": have.configs.get("retention.ms") if have else None,
                "problems": [f"{p.severity}: {p.what}" for p in found if p.topic == spec.name],
                "purpose": spec.purpose,
            }
        )
    return rows
