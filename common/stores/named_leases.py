"""Named leases in the ``leases`` table: the holder alone runs a task meant for one process."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, or_, select, update

from common.errors import ConcurrentUpdate
from common.sql.db import Database, utcnow
from common.sql.schema import leases


def try_lease(db: Database, name: str, owner: str, seconds: float) -> bool:
    """Take or extend the lease ``name`` for ``seconds`` unless another owner holds it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    lease = leases.c
    try:
        with db.write() as conn:
            if conn.execute(select(lease.name).where(lease.name == name)).first() is None:
                conn.execute(insert(leases).values(name=name, owner=owner, until=until))
                return True
            return (
                conn.execute(
                    update(leases)
                    .where(
                        lease.name == name,
                        or_(lease.until.is_(None), lease.until < now, lease.owner == owner),
                    )
                    .values(owner=owner, until=until)
                ).rowcount
                == 1
            )
    except ConcurrentUpdate:  # another process inserted the row first
        return False
