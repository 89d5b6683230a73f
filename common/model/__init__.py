"""The rows and their rules: the tables' catalog, rows between parsing and the database, the
rules a row can break, jobs and their parts, and the message that names a part to ingest."""
