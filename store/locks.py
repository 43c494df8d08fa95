"""Per-key Postgres advisory locks held on one connection for a whole sequence of statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from store.db import DATABASE_AWAY


@asynccontextmanager
async def session_lock(pool: asyncpg.Pool, key: str, space: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the lock on `key` (in its own `space` of keys) until the block ends. Two holders
    of the same key take turns; the lock goes with the connection if the process dies."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, $2))", key, space)
        try:
            yield conn
        finally:
            try:
                if not conn.is_closed():
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, $2))", key, space)
            except DATABASE_AWAY:
                pass  # the connection died (Postgres went away) and the lock with it; the block's own error stands


async def wait_for_lock(conn: asyncpg.Connection, key: str, space: int) -> None:
    """Until no other connection holds the lock on `key`: taken and given back at once, on `conn`."""
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, $2))", key, space)
    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, $2))", key, space)
