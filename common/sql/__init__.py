"""The SQL port: engines and the driver-error translation, the schema and its migrations, and
the bulk paths that load rows (COPY, executemany, fast_executemany)."""
