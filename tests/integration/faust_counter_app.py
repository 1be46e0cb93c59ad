"""A minimal Faust app for the foundation test: count records per key in a RocksDB table.

Run as `python -m faust -A tests.integration.faust_counter_app worker`; configured by env:
COUNTER_TOPIC, COUNTER_DATADIR, COUNTER_OUT (a JSON file rewritten after every record).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faust

app = faust.App(
    f"counter-{os.environ['COUNTER_TOPIC']}",
    broker=f"kafka://{os.environ['GENPULSE_KAFKA_BOOTSTRAP']}",
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATADIR"],
    topic_partitions=1,
    topic_replication_factor=1,
    web_enabled=False,
)
source = app.topic(
    os.environ["COUNTER_TOPIC"], key_serializer="raw", value_serializer="raw", partitions=1
)
counts = app.Table("counts", default=int, partitions=1)


@app.agent(source)
async def count(stream: faust.StreamT[bytes]) -> None:
    out = Path(os.environ["COUNTER_OUT"])
    async for key, _value in stream.items():
        counts[key.decode()] += 1
        store = counts.data
        snapshot = {
            "store": f"{type(store).__module__}.{type(store).__name__}",
            "use_rocksdict": getattr(store, "use_rocksdict", None),
            "db_types": sorted({type(db).__name__ for db in getattr(store, "_dbs", {}).values()}),
            "counts": {k: counts[k] for k in counts},
        }
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(out)
