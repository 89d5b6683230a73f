"""The command groups of ``ingest``, one module each."""
