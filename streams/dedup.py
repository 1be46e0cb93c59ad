"""Drop a repeated `event_id`: the event ids one source partition counted, for a horizon.

Producers resend: the browser collector retries a lost 202, the SDK retries a batch whose
acknowledgement it never saw, an operator replays a file. Every copy of an event carries the
same `event_id` and the same key (the session id), so it lands on the same partition, whose
owner alone decides whether it was counted.

Where the ids live, so memory does not grow with them and a SIGKILL changes nothing:
- an id is kept as its 12-byte BLAKE2b digest: a third of a hex id's size, so the changelog
  and the store carry a third of the bytes (a chance collision, 2^-96 per pair of ids, would
  count one event as a duplicate);
- the changelog gets one immutable row per poll, `x:<minute of its newest event>:<first
  offset>`, holding that poll's new digests (a version byte, then the digests back to
  back), in the same Kafka transaction as the counts they produced and the input offsets;
- the partition's RocksDB gets one empty key per id, the digest itself, in a column family
  of its own (streams.store, uncompressed) after the commit (local
  only; rebuilt from the `x:` rows on restore). A lookup is one membership test of that
  column family, mostly answered by a bloom filter; the ids of the poll being folded are
  checked in a dict first.
Blocks whose newest event is older than the horizon (event time) are deleted with their ids,
so an id is remembered for at least the horizon (default 24 h, GENPULSE_DEDUP_HORIZON_S).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import orjson

from streams.keys import MINUTE_MS

BLOCK = "x:"
DIGEST_BYTES = 12
BLOCK_V2 = b"\x02"  # a block of digests; blocks of stop 10 and before are JSON lists of ids
_blake2b = hashlib.blake2b


def digest(event_id: str) -> bytes:
    return _blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def block_digests(blob: bytes) -> list[bytes]:
    """The digests a changelog block holds, in either stored form."""
    if blob[:1] == BLOCK_V2:
        return [blob[i : i + DIGEST_BYTES] for i in range(1, len(blob), DIGEST_BYTES)]
    return [digest(str(event_id)) for event_id in orjson.loads(blob)]


class IdRows(Protocol):
    """The partition store's raw access the id set needs (streams.store.RowStore)."""

    def get_raw(self, key: bytes) -> bytes | None: ...

    def id_lookup(self) -> Callable[[bytes], object]: ...

    def put_ids(self, keys: Iterable[bytes]) -> None: ...

    def delete_ids(self, keys: Iterable[bytes]) -> None: ...

    def rows_between(self, low: str, high: str) -> Iterator[tuple[str, bytes]]: ...


def block_key(newest_ms: int, first_offset: int) -> str:
    minute = newest_ms - newest_ms % MINUTE_MS
    return f"{BLOCK}{minute:013d}:{first_offset:019d}"


class SeenEvents:
    """The event ids of one source partition; `rows=None` keeps them in memory (tests)."""

    def __init__(self, rows: IdRows | None, horizon_ms: int) -> None:
        self.rows = rows
        self.horizon_ms = horizon_ms
        self.memory: dict[bytes, bytes] = {}  # only without a store
        self.known = self.memory.get if rows is None else rows.id_lookup()  # None: unknown
        self.pending: dict[bytes, None] = {}
        self.pending_from = -1
        self.pending_newest = 0

    def first_time(self, event_id: str, timestamp_ms: int, offset: int) -> bool:
        """True (and remembered for this poll) unless the id was counted before. Called once
        per event: the digest is computed here, not by `digest`, to save a call."""
        key = _blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()
        pending = self.pending
        if key in pending or self.known(key) is not None:
            return False
        if not pending:
            self.pending_from = offset
        pending[key] = None
        if timestamp_ms > self.pending_newest:
            self.pending_newest = timestamp_ms
        return True

    def take_block(self) -> tuple[str, bytes] | None:
        """The changelog row of this poll's new ids (None when there are none)."""
        if not self.pending:
            return None
        key = block_key(self.pending_newest, self.pending_from)
        return key, BLOCK_V2 + b"".join(self.pending)

    def committed(self) -> None:
        """The poll is committed: remember its ids locally (in key order: RocksDB inserts a
        sorted batch into its memtable faster than the sort costs, ~0.8 against 1.3 us an id)."""
        if self.rows is None:
            self.memory.update(dict.fromkeys(self.pending, b""))
        else:
            self.rows.put_ids(sorted(self.pending))
        self.pending = {}
        self.pending_newest = 0

    def expired_blocks(self, watermark_ms: int) -> list[str]:
        """Blocks whose newest event is past the horizon (to tombstone in the changelog)."""
        if self.rows is None:
            return []
        cutoff = watermark_ms - self.horizon_ms
        if cutoff <= 0:
            return []
        high = f"{BLOCK}{cutoff - cutoff % MINUTE_MS:013d}"
        return [key for key, _ in self.rows.rows_between(BLOCK, high)]

    def forget_block(self, key: str) -> None:
        """Delete a block's ids from the local set (after its tombstone is committed)."""
        if self.rows is None:
            return
        blob = self.rows.get_raw(key.encode())
        if blob is None:
            return
        self.rows.delete_ids(block_digests(blob))

    def rebuild(self) -> int:
        """After a restore from the changelog: the local id keys from the `x:` blocks."""
        if self.rows is None:
            return 0
        ids = 0
        for _, blob in self.rows.rows_between(BLOCK, "x;"):
            keys = block_digests(blob)
            self.rows.put_ids(sorted(keys))
            ids += len(keys)
        return ids
