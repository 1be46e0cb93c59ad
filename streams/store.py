"""A source partition's rows on local disk (RocksDB via rocksdict), rebuilt from its changelog.

The changelog (a compacted topic, one partition per source partition) is the truth: rows are
written to it in the same Kafka transaction as the input offsets, so after any crash the
committed changelog matches the committed input position. On assignment the local RocksDB
is wiped and refilled from the changelog (read_committed), so it never holds rows of an
aborted transaction.

Opening waits (bounded) for RocksDB's LOCK: "No locks available" means a handle on the same
directory is still alive in this process (a store being closed, or one leaked by a failed
load and only freed by the garbage collector); "temporarily unavailable" means another
process, e.g. a previous worker that is still exiting.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

log = logging.getLogger("genpulse.worker")
LOCK_WAIT_S = 30.0
MiB = 1024 * 1024
# One budget for all partitions' stores of the process, so memory does not grow with the
# number of partitions nor with the SST files accumulating: RocksDB would otherwise give each
# store its own 8 MiB block cache and keep index and filter blocks outside any cache.
BLOCK_CACHE_BYTES = 8 * MiB
MEMTABLES_BYTES = 16 * MiB
_shared: tuple[Cache, WriteBufferManager] | None = None
IDS = "ids"  # the column family of the event ids (streams/dedup.py)


PROPERTIES = (
    "rocksdb.cur-size-all-mem-tables",
    "rocksdb.size-all-mem-tables",
    "rocksdb.estimate-table-readers-mem",
    "rocksdb.num-files-at-level0",
    "rocksdb.total-sst-files-size",
    "rocksdb.estimate-num-keys",
    "rocksdb.num-running-compactions",
)


def shared_memory() -> dict[str, int]:
    """The process-wide block cache and memtable budget in use (bytes)."""
    if _shared is None:
        return {}
    cache, memtables = _shared
    return {
        "block_cache": cache.get_usage(),
        "block_cache_pinned": cache.get_pinned_usage(),
        "memtables": memtables.get_usage(),
    }


def _table(cache: Cache, ids: bool) -> BlockBasedOptions:
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_bloom_filter(10, False)  # a missing row (new session, new minute) skips reads
    # the ids' index and filter blocks stay with their files' readers, outside the shared
    # cache: a file of millions of ids has a filter of megabytes, which did not stay in the
    # 8 MiB cache, so every lookup read it again (3 M ids took minutes); outside, they cost
    # about 1.3 bytes per id, what a Bloom filter of the ids would cost in memory
    table.set_cache_index_and_filter_blocks(not ids)
    table.set_pin_l0_filter_and_index_blocks_in_cache(not ids)
    return table


def _options(ids: bool = False) -> Options:
    global _shared
    if _shared is None:
        _shared = (Cache(BLOCK_CACHE_BYTES), WriteBufferManager(MEMTABLES_BYTES, False))
    cache, memtables = _shared
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # rows are rewritten every poll: small memtables hold few stale versions (the default is
    # 64 MiB per store); the manager flushes the largest when all of them pass the budget
    options.set_write_buffer_size(2 * MiB)
    options.set_max_write_buffer_number(2)
    options.set_write_buffer_manager(memtables)
    options.set_block_based_table_factory(_table(cache, ids))
    # the newest rows and event ids sit in the memtable: a bloom filter there too makes a
    # lookup of a new id (nearly every event, streams/dedup.py) skip the skiplist search
    options.set_memtable_prefix_bloom_ratio(0.1)
    options.set_memtable_whole_key_filtering(True)
    options.set_max_open_files(256)
    return options


def _id_options() -> Options:
    """The ids column family: random 12-byte keys with empty values, one lookup per event and
    one insert per new id, in files of their own (the rows' files and flushes do not carry
    them); digests do not compress, so the files are not compressed."""
    options = _options(ids=True)
    options.set_compression_type(DBCompressionType.none())
    return options


def _no_wal(db: Rdict) -> Rdict:
    """No write-ahead log: a store is wiped at open and refilled from its changelog
    (docs/architecture.md), so RocksDB's own crash recovery would never be used."""
    write = WriteOptions()
    write.disable_wal = True  # type: ignore[assignment]  # a property; the stub says method
    db.set_write_options(write)
    return db


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "LOCK" in text or "lock" in text.lower()


class RowStore:
    def __init__(self, path: Path, db: Rdict) -> None:
        self.path = path
        self.db = db
        self.ids = _no_wal(db.get_column_family(IDS))

    @classmethod
    async def open(cls, path: Path, wait_s: float = LOCK_WAIT_S) -> RowStore:
        """An empty store at `path` (wiped), waiting up to `wait_s` for the LOCK's holder."""
        deadline = time.monotonic() + wait_s
        delay = 0.05
        while True:
            try:
                return cls(path, cls._open_empty(path))
            except Exception as exc:  # rocksdict raises plain Exception
                if not _is_lock_error(exc) or time.monotonic() + delay > deadline:
                    raise
                if delay == 0.05:
                    log.warning("RocksDB at %s is locked (%s); waiting for its holder", path, exc)
            gc.collect()  # a leaked handle in a reference cycle holds the lock until collected
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _open_empty(path: Path) -> Rdict:
        # open first, then clear: wiping the directory under a live handle would delete the
        # LOCK file its holder still relies on
        if (path / "CURRENT").exists():
            # raises while another handle holds it; opens the column families it finds,
            # whichever version of this module wrote them
            Rdict(str(path), _options()).close()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        db = _no_wal(Rdict(str(path), _options()))
        db.create_column_family(IDS, _id_options()).close()
        return db

    def get(self, key: str) -> bytes | None:
        value = self.db.get(key.encode())
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes) -> None:
        self.db.put(key.encode(), value)

    def delete(self, key: str) -> None:
        self.db.delete(key.encode())

    def get_raw(self, key: bytes) -> bytes | None:
        value = self.db.get(key)
        return None if value is None else bytes(value)

    def id_lookup(self) -> Callable[[bytes], object]:
        """The ids column family's own bound get (None: not in the set), called once per event
        without a wrapper in between; cheaper than its `in` for the usual absent id."""
        return self.ids.get

    def _id_batch(self) -> WriteBatch:
        # a column family handle holds the database open: taken per write, never kept
        batch = WriteBatch(raw_mode=True)
        batch.set_default_column_family(self.db.get_column_family_handle(IDS))
        return batch

    def put_ids(self, keys: Iterable[bytes]) -> None:
        """Add ids (digests) in one write (a poll's new event ids)."""
        batch = self._id_batch()
        put = batch.put
        for key in keys:
            put(key, b"")
        self.db.write(batch)

    def delete_ids(self, keys: Iterable[bytes]) -> None:
        batch = self._id_batch()
        for key in keys:
            batch.delete(key)
        self.db.write(batch)

    def rows_between(self, low: str, high: str) -> Iterator[tuple[str, bytes]]:
        """Rows with low <= key < high, bypassing the block cache (sweeps and rebuilds)."""
        read = ReadOptions()
        read.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
        read.set_iterate_upper_bound(high.encode())
        for key, value in self.db.items(from_key=low.encode(), read_opt=read):
            yield bytes(key).decode(), bytes(value)  # type: ignore[arg-type]

    def bucket_rows(self) -> Iterator[tuple[str, bytes]]:
        """The time-bucket rows (d:, h:, m:) and their slices (c:, t:): what Redis holds."""
        yield from self.rows_between("c:", "c;")
        yield from self.rows_between("d:", "s:")
        yield from self.rows_between("t:", "t;")

    def row_keys(self) -> list[str]:
        keys = self.db.keys()  # Rdict's own iterator (iter() needs bytes indexes in raw mode)
        return [bytes(k).decode() for k in keys]  # type: ignore[arg-type]

    def bucket_keys(self) -> list[str]:
        """Keys of the time-bucket rows (d:, h:, m:) and their slices (c:, t:), not sessions;
        a scan that bypasses the block cache so the retention sweep does not evict the rows in
        use."""
        out = []
        for low, high in ((b"c:", b"c;"), (b"d:", b"s:"), (b"t:", b"t;")):
            read = ReadOptions()
            read.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
            read.set_iterate_upper_bound(high)
            keys = self.db.keys(from_key=low, read_opt=read)
            out += [bytes(k).decode() for k in keys]  # type: ignore[arg-type]
        return out

    def session_rows(self) -> Iterator[tuple[str, bytes]]:
        """The `s:<session id>` rows (streams.sessions), bypassing the block cache."""
        read = ReadOptions()
        read.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
        read.set_iterate_upper_bound(b"s;")
        for key, value in self.db.items(from_key=b"s:", read_opt=read):
            yield bytes(key).decode(), bytes(value)  # type: ignore[arg-type]

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in self.db.items():
            yield bytes(key).decode(), bytes(value)  # type: ignore[arg-type]

    def memory(self) -> dict[str, int]:
        """RocksDB's own memory figures of this store, both column families summed (the memory
        probe, streams/probe.py)."""
        out = {}
        for name in PROPERTIES:
            values = [db.property_int_value(name) for db in (self.db, self.ids)]
            if values[0] is not None:
                out[name.removeprefix("rocksdb.")] = sum(v for v in values if v is not None)
        return out

    def close(self) -> None:
        self.ids.close()  # the column family's handle holds the database open too
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
