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
- the partition's RocksDB gets one empty `z:<digest>` key per id after the commit (local
  only; rebuilt from the `x:` rows on restore). A lookup is one RocksDB get, mostly answered
  by its bloom filter; the ids of the poll being folded are checked in a dict first.
Blocks whose newest event is older than the horizon (event time) are deleted with their ids,
so an id is remembered for at least the horizon (default 24 h, GENPULSE_DEDUP_HORIZON_S).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol

import orjson

from streams.keys import MINUTE_MS

BLOCK = "x:"
SEEN = b"z:"
DIGEST_BYTES = 12
BLOCK_V2 = b"\x02"  # a block of digests; blocks of stop 10 and before are JSON lists of ids


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def block_digests(blob: bytes) -> list[bytes]:
    """The digests a changelog block holds, in either stored form."""
    if blob[:1] == BLOCK_V2:
        return [blob[i : i + DIGEST_BYTES] for i in range(1, len(blob), DIGEST_BYTES)]
    return [digest(str(event_id)) for event_id in orjson.loads(blob)]


class IdRows(Protocol):
    """The partition store's raw access the id set needs (streams.store.RowStore)."""

    def get_raw(self, key: bytes) -> bytes | None: ...

    def delete_raw(self, key: bytes) -> None: ...

    def put_many_raw(self, keys: Iterator[bytes] | list[bytes], value: bytes) -> None: ...

    def rows_between(self, low: str, high: str) -> Iterator[tuple[str, bytes]]: ...


def block_key(newest_ms: int, first_offset: int) -> str:
    minute = newest_ms - newest_ms % MINUTE_MS
    return f"{BLOCK}{minute:013d}:{first_offset:019d}"


class SeenEvents:
    """The event ids of one source partition; `rows=None` keeps them in memory (tests)."""

    def __init__(self, rows: IdRows | None, horizon_ms: int) -> None:
        self.rows = rows
        self.horizon_ms = horizon_ms
        self.memory: set[bytes] = set()  # only without a store
        self.pending: dict[bytes, None] = {}
        self.pending_from = -1
        self.pending_newest = 0

    def first_time(self, event_id: str, timestamp_ms: int, offset: int) -> bool:
        """True (and remembered for this poll) unless the id was counted before."""
        key = digest(event_id)
        if key in self.pending:
            return False
        if self.rows is None:
            if key in self.memory:
                return False
        elif self.rows.get_raw(SEEN + key) is not None:
            return False
        if not self.pending:
            self.pending_from = offset
        self.pending[key] = None
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
        """The poll is committed: remember its ids locally."""
        if self.rows is None:
            self.memory.update(self.pending)
        else:
            self.rows.put_many_raw([SEEN + key for key in self.pending], b"")
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
        for one in block_digests(blob):
            self.rows.delete_raw(SEEN + one)

    def rebuild(self) -> int:
        """After a restore from the changelog: the local id keys from the `x:` blocks."""
        if self.rows is None:
            return 0
        ids = 0
        for _, blob in self.rows.rows_between(BLOCK, "x;"):
            keys = [SEEN + one for one in block_digests(blob)]
            self.rows.put_many_raw(keys, b"")
            ids += len(keys)
        return ids
