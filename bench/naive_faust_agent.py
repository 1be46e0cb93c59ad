"""The naive baseline of bench/worker_throughput.py: a Faust agent doing what the Faust
docs show first, `async for` over the stream and one RocksDB table increment per event.

Run by the bench as `python -m faust -A bench.naive_faust_agent worker`; configured by env
NAIVE_TOPIC, NAIVE_APP, NAIVE_DATADIR, NAIVE_PROGRESS (a file: events seen, time).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faust
import orjson

app = faust.App(
    os.environ["NAIVE_APP"],
    broker=f"kafka://{os.environ.get('GENPULSE_KAFKA_BOOTSTRAP', '127.0.0.1:9092')}",
    store="rocksdb://",
    datadir=os.environ["NAIVE_DATADIR"],
    web_enabled=False,
    topic_partitions=int(os.environ.get("NAIVE_PARTITIONS", "6")),
)
source = app.topic(os.environ["NAIVE_TOPIC"], key_serializer="raw", value_serializer="raw")
counts = app.Table("counts_by_type", default=int)
progress = Path(os.environ["NAIVE_PROGRESS"])
seen = {"n": 0, "first": 0.0}


@app.agent(source)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for value in stream:
        if not seen["first"]:
            seen["first"] = time.monotonic()
        counts[orjson.loads(value)["type"]] += 1
        seen["n"] += 1
        if seen["n"] % 5000 == 0:
            progress.write_text(f"{seen['n']} {seen['first']} {time.monotonic()}")
