"""Configuration from `ENGAGE_*` environment variables (or a `.env` file).

Unset means the embedded default of `engage dev`: every default below is an address the dev stack listens on.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PORTS = {
    "temporal": 7233,
    "ui": 8233,
    "postgres": 55432,
    "smtp": 8025,
    "inbound": 8026,
    "caldav": 5232,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENGAGE_", env_file=".env", extra="ignore")

    temporal_address: str = f"127.0.0.1:{DEV_PORTS['temporal']}"
    temporal_namespace: str = "default"
    task_queue: str = "engage"
    # Temporal Cloud: an API key, or mTLS with a client certificate and key (paths to PEM files).
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool = False
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None

    database_url: SecretStr = SecretStr(f"postgresql://engage@127.0.0.1:{DEV_PORTS['postgres']}/engage")
    database_pool_max: int = Field(default=10, ge=1, le=200)
    # Workflows kept in the worker's sticky cache. Each costs memory; one not cached is replayed from its
    # history on its next task (a follow-through's history is short), so thousands of open engagements fit a
    # small worker. bench/scale.py measures the worker's memory with this default.
    max_cached_workflows: int = Field(default=500, ge=0, le=100_000)
    # The SDK's workflow sandbox re-imports the workflow modules for every cached workflow and checks every
    # import: safety against non-deterministic code, paid in memory and CPU (docs/BENCHMARKS.md measures it).
    # Tests always run sandboxed; a worker may run without it to cache many more workflows in the same memory.
    workflow_sandbox: bool = True

    smtp_url: SecretStr = SecretStr(f"smtp://127.0.0.1:{DEV_PORTS['smtp']}")
    mail_from: str = "engage@engage.localhost"
    caldav_url: str = f"http://127.0.0.1:{DEV_PORTS['caldav']}/"
    caldav_user: str = "engage"
    caldav_password: SecretStr = SecretStr("engage")
    inbound_domain: str = "engage.localhost"
    inbound_host: str = "127.0.0.1"
    inbound_port: int = DEV_PORTS["inbound"]
    reply_secret: SecretStr = SecretStr("engage-dev-reply-secret-change-me")

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    inbound_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")

    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()

    def database_label(self) -> str:
        """The database address without its password, fit for an error message or a log line."""
        parts = urlsplit(self.database_dsn())
        return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
