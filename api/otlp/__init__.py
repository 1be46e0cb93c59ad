"""OTLP/HTTP ingest: OpenTelemetry GenAI spans become the genpulse events the SDK sends.

`decode` turns a request body into an OTLP protobuf message (binary or JSON, gzip, limits),
`genai` maps GenAI spans to events (pure), `records` validates them into Kafka records,
`reply` encodes the OTLP answers. The route is api/routes/otlp.py; docs/integrations.md
"From OpenTelemetry" is the user's guide.
"""
