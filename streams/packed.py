"""`PackedInts`: a str -> int map held as bytes, ~30 bytes an entry instead of ~125.

The controller's day spend (streams/day_spend.py) has an entry per distinct user of the
day: as a dict that is a str object, an int object and a dict slot each, ~125 bytes, and it
was the worker's largest steady grower in issue 14's soak (100,000 users,
docs/architecture.md). Here the entries live in a few bytearrays, one per hash bucket, as
``\\x01<key utf-8>\\x00<decimal value>`` records: a lookup is one `find` of
``\\x01<key>\\x00`` in a bucket of 32-64 records on average (separators never occur inside
a key or a value, so the match is that key's record), the value is exact whatever its size.
Keys that contain a separator character (user ids may) go to a plain dict beside. Buckets
double when they average more than `LOAD` records, so a few keys cost a few small
bytearrays.
"""

from __future__ import annotations

from collections.abc import Iterator

START, MID = b"\x01", b"\x00"
LOAD = 64  # records per bucket, on average, before the buckets double
FIRST_BUCKETS = 8


class PackedInts:
    __slots__ = ("buckets", "odd", "size")

    def __init__(self) -> None:
        self.buckets = [bytearray(START) for _ in range(FIRST_BUCKETS)]
        self.odd: dict[str, int] = {}  # keys with \x00 or \x01 in them
        self.size = 0  # records in the buckets

    def __len__(self) -> int:
        return self.size + len(self.odd)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> int | None:
        if _odd(key):
            return self.odd.get(key)
        found = self._find(key)
        return None if found is None else int(found[0][found[2] : found[3]])

    def add(self, key: str, n: int) -> None:
        """Add `n` to the key's value (a missing key starts from 0)."""
        if _odd(key):
            self.odd[key] = self.odd.get(key, 0) + n
            return
        if self._bump_packed(key, n):
            return
        self.buckets[hash(key) % len(self.buckets)] += _record(key, n)
        self.size += 1
        if self.size > LOAD * len(self.buckets):
            self._grow()

    def bump(self, key: str, n: int) -> bool:
        """Add `n` to the key's value if it has one (False: it has none, nothing changed)."""
        if _odd(key):
            if key not in self.odd:
                return False
            self.odd[key] += n
            return True
        return self._bump_packed(key, n)

    def pop(self, key: str) -> int | None:
        """Remove the key; its value, or None if it had none."""
        if _odd(key):
            return self.odd.pop(key, None)
        found = self._find(key)
        if found is None:
            return None
        blob, at, start, end = found
        value = int(blob[start:end])
        del blob[at + 1 : end + 1]  # the record and its closing START
        self.size -= 1
        return value

    def items(self) -> Iterator[tuple[str, int]]:
        yield from self._records()
        yield from self.odd.items()

    def _bump_packed(self, key: str, n: int) -> bool:
        found = self._find(key)
        if found is None:
            return False
        blob, _, start, end = found
        blob[start:end] = b"%d" % (int(blob[start:end]) + n)
        return True

    def _find(self, key: str) -> tuple[bytearray, int, int, int] | None:
        """The key's bucket, where its record starts and where its value starts and ends."""
        raw = key.encode("utf-8", "surrogatepass")
        blob = self.buckets[hash(key) % len(self.buckets)]
        at = blob.find(START + raw + MID)
        if at < 0:
            return None
        start = at + len(raw) + 2
        return blob, at, start, blob.index(START, start)

    def _records(self) -> Iterator[tuple[str, int]]:
        for blob in self.buckets:
            for record in bytes(blob).split(START)[1:-1]:
                raw, _, value = record.partition(MID)
                yield raw.decode("utf-8", "surrogatepass"), int(value)

    def _grow(self) -> None:
        records = list(self._records())
        self.buckets = [bytearray(START) for _ in range(2 * len(self.buckets))]
        for key, value in records:
            self.buckets[hash(key) % len(self.buckets)] += _record(key, value)


def _odd(key: str) -> bool:
    """A key with a separator in it: kept in the plain dict."""
    return "\x00" in key or "\x01" in key


def _record(key: str, n: int) -> bytes:
    return key.encode("utf-8", "surrogatepass") + MID + b"%d" % n + START
