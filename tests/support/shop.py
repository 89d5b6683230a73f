"""The shop catalog (tests/support/catalogs/shop.toml) made current for in-process services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.bootstrap import Services
from common.model import catalog
from common.model.catalog_file import load_catalog, shipped_catalog
from common.sql.catalog_tables import catalog_tables
from common.sql.migrate import upgrade
from tests.support.catalogs import SHOP
from tests.support.flow import service_set

SHOP_ORDER = ["regions", "stores", "orders", "products", "order_lines"]  # parents first


@contextmanager
def shop_services(tmp_path: Path, database_url: str, **overrides: object) -> Iterator[Services]:
    """Services on the shop catalog, which building them makes current, with its tables created
    in the database; afterwards the shipped catalog is current again and the shop's tables are
    gone (a PostgreSQL database is shared by the tests of a process)."""
    try:
        with service_set(tmp_path, database_url, catalog_file=SHOP, **overrides) as services:
            upgrade(services.db)
            try:
                yield services
            finally:
                catalog_tables(load_catalog(SHOP)).metadata.drop_all(services.db.engine)
    finally:
        catalog.activate(shipped_catalog())
