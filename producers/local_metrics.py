"""In-process aggregation of measurements into mergeable sketches, one per (name, tags).

Two views are kept: the *window* since the last metric batch (taken and sent by the sender)
and the *lifetime* view this process reports through get_metrics(). Folding a value costs a
few microseconds under one lock; memory is bounded by the sketches' bins, not by the
number of values.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import orjson
from ddsketch import DDSketch

from producers.metric_batch import MetricBatch, MetricSeries
from producers.sketch import new_sketch, sketch_to_wire

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]

MAX_BATCH_RECORD_BYTES = 512 * 1024
"""Metric batches are split so each Kafka record stays well under the broker's 1 MiB."""


def series_key(name: str, tags: Mapping[str, str] | None) -> SeriesKey:
    return name, tuple(sorted(tags.items())) if tags else ()


@dataclass
class Series:
    unit: str
    sketch: DDSketch = field(default_factory=new_sketch)


@dataclass(frozen=True)
class MetricWindow:
    """What one flush sends: the series folded between start_ms and end_ms."""

    start_ms: int
    end_ms: int
    series: dict[SeriesKey, Series]


class MetricAggregator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: dict[SeriesKey, Series] = {}
        self._lifetime: dict[SeriesKey, Series] = {}
        self._window_start_ms = _now_ms()

    def add(self, key: SeriesKey, value: float, unit: str) -> None:
        """Fold one finite value (the caller has checked it) into the window."""
        with self._lock:
            series = self._window.get(key)
            if series is None:
                series = self._window[key] = Series(unit)
            series.sketch.add(value)

    def take_window(self) -> MetricWindow | None:
        """Hand the current window to the sender and start a new one (None when empty)."""
        now = _now_ms()
        with self._lock:
            window, self._window = self._window, {}
            start, self._window_start_ms = self._window_start_ms, now
            for key, series in window.items():
                kept = self._lifetime.get(key)
                if kept is None:
                    kept = self._lifetime[key] = Series(series.unit)
                kept.sketch.merge(series.sketch)
        if not window:
            return None
        return MetricWindow(start_ms=start, end_ms=max(now, start), series=window)

    def restart_after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held it) and no unsent
        window (the child must not send its parent's values)."""
        self._lock = threading.Lock()
        self._window = {}
        self._window_start_ms = _now_ms()

    def snapshot(self) -> dict[SeriesKey, Series]:
        """Lifetime view including the unsent window; copies, safe to read."""
        with self._lock:
            views = {}
            for key in set(self._lifetime) | set(self._window):
                parts = [s for s in (self._lifetime.get(key), self._window.get(key)) if s]
                merged = views[key] = Series(parts[0].unit)
                for part in parts:
                    merged.sketch.merge(part.sketch)
            return views

    def clear(self) -> None:
        with self._lock:
            self._lifetime = {}
            self._window = {}


def encode_window(service: str, window: MetricWindow) -> list[bytes]:
    """The window as one or more metric-batch records (contract in producers/metric_batch.py)."""
    records: list[bytes] = []
    for chunk in _chunks(window):
        batch = MetricBatch(
            batch_id=uuid.uuid4().hex,
            service=service,
            start_ms=window.start_ms,
            end_ms=window.end_ms,
            series=chunk,
        )
        records.append(orjson.dumps(batch.model_dump(mode="json")))
    return records


def _chunks(window: MetricWindow) -> Iterator[list[MetricSeries]]:
    chunk: list[MetricSeries] = []
    size = 0
    for (name, tags), series in window.series.items():
        sketch = series.sketch
        wire = sketch_to_wire(sketch)
        item = MetricSeries(
            name=name,
            unit=series.unit,
            tags=dict(tags),
            count=int(sketch.count),
            sum=sketch.sum,
            min=sketch._min,
            max=sketch._max,
            sketch=wire,
        )
        item_size = 200 + 24 * (len(wire["pos"]) + len(wire["neg"]))
        if chunk and size + item_size > MAX_BATCH_RECORD_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
