"""Configuration from `ENGAGE_*` environment variables (or a `.env` file).

Unset means the embedded default of `engage dev`: every default below is an address the dev stack listens on.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.common import Duration

DEV_PORTS = {
    "temporal": 7233,
    "ui": 8233,
    "postgres": 55432,
    "smtp": 8025,
    "inbound": 8026,
    "caldav": 5232,
    "web": 8027,
}

DEV_REPLY_SECRET = "engage-dev-reply-secret-change-me"
MIN_SECRET_BYTES = 32


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
    # small worker. bench/scale.py measures the worker's memory with this default: through a burst of 5,000
    # check-ins at 1,000 engagements, 317.8 MB with 300 against 420.3 with 500, for 12 % more worker CPU per
    # check-in (docs/BENCHMARKS.md, session 11).
    max_cached_workflows: int = Field(default=300, ge=0, le=100_000)
    # Workflow tasks one worker runs at once. Python runs workflow code one task at a time (the interpreter
    # lock), so more in flight only stretch each one: after a restart, the SDK's default of 100 cold replays at
    # once took 5-9 s each on a loaded 2-core machine, against a 10 s task timeout, and a worker restarted every
    # few seconds (bench/chaos.py) finished none. Activities are not limited by this.
    max_concurrent_workflow_tasks: int = Field(default=8, ge=2, le=1000)
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
    reply_secret: SecretStr = SecretStr(DEV_REPLY_SECRET)
    # Set by `engage dev` (devstack/stack.py) and the tests for the processes they start: only then may the
    # worker, `engage inbox` and `engage web` run with the development secret (production_secret_error).
    dev_stack: bool = False
    # The shortest follow-through cadence `engage start` accepts (cli/starting.py). A real engagement asks its
    # owners at most hourly; the demo, the tests and the benchmarks lower it here (e.g. ENGAGE_MIN_CADENCE=8s),
    # and only here. Never checked by the workflow: a worker replays any engagement already running.
    min_cadence: Duration = timedelta(hours=1)

    # The inbound SMTP server's limits per client address (adapters/rate_limits.py) and per message.
    inbound_max_connections_per_ip: int = Field(default=10, ge=1)
    inbound_max_recipients: int = Field(default=20, ge=1)  # per message; a reply has one
    inbound_max_messages_per_minute: int = Field(default=30, ge=1)
    # This many refused recipients (forged, expired, unknown) within the window block the address for block_s.
    inbound_max_refused_recipients: int = Field(default=20, ge=1)
    inbound_refused_window_s: float = Field(default=600.0, gt=0)
    inbound_block_s: float = Field(default=900.0, gt=0)
    # Idle time allowed between two SMTP commands (RFC 5321 suggests minutes; a relay sends at once).
    inbound_command_timeout_s: float = Field(default=30.0, gt=0)
    # Seconds one message may take to parse (adapters/mime_limits.py), in a worker process.
    inbound_parse_timeout_s: float = Field(default=5.0, gt=0)
    # Comma-separated networks not limited per address: the relay in front of us, which has its own limits.
    inbound_exempt_networks: str = ""
    # The authserv-id of the relay in front of us (e.g. mx.example.com): when set, a reply must carry that
    # relay's Authentication-Results with DMARC, or an aligned DKIM or SPF, passing (adapters/mail_auth.py).
    inbound_trusted_relay: str | None = None
    # Replies without an MX: `engage inbox` reads this IMAP mailbox instead of running the SMTP server
    # (adapters/imap_inbox.py; `--imap URL` overrides), e.g. imaps://checkins%40firm.com:PASSWORD@host:993/INBOX.
    inbound_imap_url: SecretStr | None = None
    # The check-in page (`engage web`): where it listens, and the address owners' links point to (behind a
    # proxy in production, e.g. https://checkin.example.com).
    web_host: str = "127.0.0.1"
    web_port: int = DEV_PORTS["web"]
    public_url: str = f"http://127.0.0.1:{DEV_PORTS['web']}"

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    inbound_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")

    def production_secret_error(self) -> str | None:
        """Why this process must not start with this reply secret (the development one, or a short one), or None.

        The secret signs every reply address and check-in link: with the published development secret anyone can
        answer for anyone. `engage dev` and the tests set ENGAGE_DEV_STACK=1 and may use it."""
        if self.dev_stack:
            return None
        secret = self.reply_secret.get_secret_value()
        if secret == DEV_REPLY_SECRET:
            problem = "is the built-in development secret"
        elif len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            problem = f"is shorter than {MIN_SECRET_BYTES} bytes"
        else:
            return None
        return (f"ENGAGE_REPLY_SECRET {problem}: set it to a random secret, e.g. "
                f"ENGAGE_REPLY_SECRET=$(openssl rand -hex 32)")

    def refuse_production_secret(self, program: str) -> None:
        """Exit 2 with one line `<program>: <why>` on stderr when production_secret_error has an objection: the
        first thing the worker, `engage inbox` and `engage web` do, before they log or connect anywhere."""
        refusal = self.production_secret_error()
        if refusal is not None:
            print(f"{program}: {refusal}", file=sys.stderr)
            raise SystemExit(2)

    def database_dsn(self) -> str:
        return self.database_url.get_secret_value()

    def database_label(self) -> str:
        """The database address without its password, fit for an error message or a log line."""
        parts = urlsplit(self.database_dsn())
        return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
