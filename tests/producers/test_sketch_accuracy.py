"""Local sketches: quantiles within 1 % of exact ones; merging equals sketching the union."""

from __future__ import annotations

import numpy as np
import orjson

from producers.local_metrics import MetricAggregator, encode_window, series_key
from producers.metric_batch import decode_metric_batch
from producers.sketch import RELATIVE_ACCURACY, new_sketch, sketch_to_wire

KEY = series_key("phase_duration_ms", {"phase": "analysis"})


def _lognormal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mean=6.0, sigma=1.0, size=n)


def test_quantiles_within_one_percent_of_numpy_on_a_million_samples() -> None:
    values = _lognormal(1_000_000, seed=7)
    aggregator = MetricAggregator()
    add = aggregator.add
    for value in values.tolist():
        add(KEY, value, "ms")
    window = aggregator.take_window()
    assert window is not None
    # through the wire and back, as the worker will see it
    (record,) = encode_window("svc", window)
    series = decode_metric_batch(record).series[0]
    sketch = series.to_sketch()
    assert series.count == 1_000_000
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(values, q, method="lower"))
        estimate = sketch.get_quantile_value(q)
        assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact, (q, estimate, exact)


def test_merged_sketches_equal_one_sketch_of_the_union() -> None:
    values = _lognormal(200_000, seed=11).tolist()
    parts = [values[i::4] for i in range(4)]
    union = new_sketch()
    for value in values:
        union.add(value)
    merged = new_sketch()
    for part in parts:
        sketch = new_sketch()
        for value in part:
            sketch.add(value)
        merged.merge(sketch)
    a, b = sketch_to_wire(merged), sketch_to_wire(union)
    assert (a["count"], a["pos"], a["neg"], a["zero"], a["min"], a["max"]) == (
        b["count"],
        b["pos"],
        b["neg"],
        b["zero"],
        b["min"],
        b["max"],
    )
    assert abs(a["sum"] - b["sum"]) <= 1e-9 * b["sum"]  # float addition order only
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999):
        assert merged.get_quantile_value(q) == union.get_quantile_value(q)


def test_lifetime_view_merges_every_window() -> None:
    aggregator = MetricAggregator()
    for value in (1.0, 2.0, 3.0):
        aggregator.add(KEY, value, "ms")
    first = aggregator.take_window()
    aggregator.add(KEY, 4.0, "ms")
    snapshot = aggregator.snapshot()[KEY].sketch
    assert first is not None and int(first.series[KEY].sketch.count) == 3
    assert (snapshot.count, snapshot.sum, snapshot._min, snapshot._max) == (4, 10.0, 1.0, 4.0)
    assert orjson.loads(encode_window("svc", first)[0])["series"][0]["count"] == 3
