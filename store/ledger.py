"""The once-only ledger: one row per key, reserved `pending` before an effect on the outside world and finished
after it, so an attempt that comes again (a retried activity, a reply delivered twice, a form sent twice) finds
the row finished and does nothing twice.

Two tables are such a ledger: `outbox` (store/outbox.py: each email by its Message-ID, finished `sent`) and
`inbound_replies` (store/inbound.py: each answer by its Message-ID or form id, finished `applied` or
`rejected`). Each names its own statements in full (no SQL is built from parts: tests/test_sql_safety.py); the
rules they follow, and the code that runs them, are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import asyncpg

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection
Finished = TypeVar("Finished", bound=str)


@dataclass(frozen=True)
class Ledger(Generic[Finished]):
    """The statements of one ledger table.

    - `reserve_sql` ($1 the key, then the row's columns): inserts the row `pending` with one attempt, or counts
      one more attempt on a row still pending; returns the row's status.
    - `finish_sql` ($1 the key, $2 the final status, then what the row keeps of the outcome): changes only a
      pending row, so a row is finished once and never reopened.
    - `row_sql` ($1 the key): the row, for callers and tests that read it.
    """

    reserve_sql: str
    finish_sql: str
    row_sql: str
    finished: tuple[Finished, ...]

    async def reserve(self, db: Executor, key: str, *columns: Any) -> Finished | Literal["pending"]:
        """'pending' when this attempt is to act, else the status an earlier attempt finished the row with."""
        status = await db.fetchval(self.reserve_sql, key, *columns)
        return status if status in self.finished else "pending"

    async def finish(self, db: Executor, key: str, status: Finished, *outcome: Any) -> None:
        await db.execute(self.finish_sql, key, status, *outcome)

    async def row(self, db: Executor, key: str) -> asyncpg.Record | None:
        return await db.fetchrow(self.row_sql, key)
