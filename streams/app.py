"""The Faust app that hosts the worker: `genpulse worker` or `faust -A streams.app worker`.

Faust gives the process its lifecycle (start, signals, graceful stop, logging); the work is
done by two services it starts: the aggregator (events and metric batches into partial rows)
and the controller (budgets and alert rules), plus the Redis snapshot writer. Configured by
`GENPULSE_*` variables (streams.settings, docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import faust
from mode import Service

from streams import memory
from streams.aggregator import Aggregator
from streams.controller import Controller
from streams.settings import WorkerSettings
from streams.snapshots import SnapshotWriter
from streams.topics import KafkaUnreachable, TopologyError, ensure_topics

log = logging.getLogger("genpulse.worker")
memory.limit_arenas()  # before any RocksDB thread exists (streams/memory.py says why)
memory.fix_mmap_threshold()
settings = WorkerSettings()  # type: ignore[call-arg]  # filled from GENPULSE_* env
Path(settings.datadir).mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="rocksdb://",
    datadir=f"{settings.datadir}/faust",
    web_enabled=False,
    topic_replication_factor=settings.topic_replication,
    broker_session_timeout=settings.session_timeout_ms / 1000,
    broker_heartbeat_interval=max(0.5, settings.session_timeout_ms / 5000),
)


@app.service
class Worker(Service):
    """Runs the aggregator, the controller and the snapshot writer until Faust stops."""

    def __post_init__(self) -> None:
        self.snapshots = SnapshotWriter(
            settings.redis_url, settings.key_prefix, settings.snapshot_interval_s
        )
        self.aggregator = Aggregator(settings, self.snapshots)
        self.controller = Controller(settings, self.snapshots)
        self._jobs: list[asyncio.Future[None]] = []

    async def on_start(self) -> None:
        try:  # `genpulse worker` checked this already; `faust -A streams.app` did not
            await ensure_topics(settings)
        except (TopologyError, KafkaUnreachable) as exc:
            log.error("refusing to start: %s", exc)
            await self.crash(exc)
            return
        for coro in (self.snapshots.run(), self.aggregator.run(), self.controller.run()):
            self._jobs.append(asyncio.ensure_future(self._guard(coro)))

    async def _guard(self, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except BaseException:
            log.exception("worker task died; exiting so a supervisor restarts a clean worker")
            await self.crash(RuntimeError("worker task died"))

    async def on_stop(self) -> None:
        self.aggregator.stop()
        self.controller.stop()
        await asyncio.gather(*self._jobs[1:], return_exceptions=True)
        await self.snapshots.stop()
        for snapshot_job in self._jobs[:1]:  # none if the start was refused
            snapshot_job.cancel()
