"""The asyncpg pool, and the one error a caller needs when Postgres cannot be reached."""

from __future__ import annotations

import json

import asyncpg

from schemas.settings import Settings


class DatabaseUnavailable(RuntimeError):
    """Postgres cannot be reached. The message names the setting and the command that starts it."""

    def __init__(self, settings: Settings, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach Postgres at {settings.database_label()} (ENGAGE_DATABASE_URL): "
            f"{type(cause).__name__}; start the embedded stack with `engage dev` or set ENGAGE_DATABASE_URL"
        )


# What Postgres being away looks like (a restart, a dropped connection, a refused connect), as against Postgres
# refusing what was asked: the first is worth trying again, the second is not.
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    DatabaseUnavailable)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON payloads travel as Python objects, not strings.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: Settings, *, min_size: int = 1, timeout: float = 5.0) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            settings.database_dsn(),
            min_size=min_size,
            max_size=max(min_size, settings.database_pool_max),
            init=_init_connection,
            timeout=timeout,
            command_timeout=60,
        )
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(settings, exc) from exc
    assert pool is not None
    return pool
