"""``ingest``: the operator's command line for the CSV ingestion service, over its HTTP API."""
