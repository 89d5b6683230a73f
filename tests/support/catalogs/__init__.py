"""Catalogs for the tests, and a way to make one current for a while."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.model import catalog
from common.model.catalog import Catalog
from common.model.catalog_file import load_catalog, parse_catalog, shipped_catalog

SHOP = Path(__file__).parent / "shop.toml"


@contextmanager
def catalog_in_use(source: Catalog | Path | str) -> Iterator[Catalog]:
    """Make a catalog, the one in a file (a path) or in a TOML text current until the block
    ends; then the shipped one again."""
    if isinstance(source, Catalog):
        chosen = source
    elif isinstance(source, Path):
        chosen = load_catalog(source)
    else:
        chosen = parse_catalog(source, source="test")
    catalog.activate(chosen)
    try:
        yield chosen
    finally:
        catalog.activate(shipped_catalog())
