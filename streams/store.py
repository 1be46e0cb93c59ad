"""A source partition's rows on local disk (RocksDB via rocksdict), rebuilt from its changelog.

The changelog (a compacted topic, one partition per source partition) is the truth: rows are
written to it in the same Kafka transaction as the input offsets, so after any crash the
committed changelog matches the committed input position. On assignment the local RocksDB
is wiped and refilled from the changelog (read_committed), so it never holds rows of an
aborted transaction.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import Options, Rdict


class RowStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        # rows are rewritten every poll: small memtables keep memory flat (default is 64 MiB
        # per partition), the rest of the history lives in SST files
        options.set_write_buffer_size(4 * 1024 * 1024)
        options.set_max_write_buffer_number(2)
        self.db = Rdict(str(path), options)

    def get(self, key: str) -> bytes | None:
        value = self.db.get(key.encode())
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes) -> None:
        self.db.put(key.encode(), value)

    def delete(self, key: str) -> None:
        self.db.delete(key.encode())

    def row_keys(self) -> list[str]:
        keys = self.db.keys()  # Rdict's own iterator (iter() needs bytes indexes in raw mode)
        return [bytes(k).decode() for k in keys]  # type: ignore[arg-type]

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in self.db.items():
            yield bytes(key).decode(), bytes(value)  # type: ignore[arg-type]

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)


async def restore(bootstrap: str, changelog: TopicPartition, store: RowStore) -> int:
    """Copy the committed changelog partition into `store`; returns rows restored."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign([changelog])
        await consumer.seek_to_beginning(changelog)
        end = (await consumer.end_offsets([changelog]))[changelog]
        rows = 0
        while await consumer.position(changelog) < end:
            batch = await consumer.getmany(changelog, timeout_ms=1000, max_records=10_000)
            for record in batch.get(changelog, []):
                key = (record.key or b"").decode()
                if record.value is None:
                    store.delete(key)
                else:
                    store.put(key, record.value)
                    rows += 1
        return rows
    finally:
        await consumer.stop()
