"""``python -m cli``: the same as the ``ingest`` script."""

from cli.main import app

app(prog_name="ingest")
