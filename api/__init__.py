"""genpulse HTTP API: serves the worker's Redis snapshots, ingest, exports and the dashboard."""
