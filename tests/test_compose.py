"""docker-compose.yml without a Docker engine: valid against the compose specification, the worker and the
inbound server configured only with settings the code reads, and the search attributes the workflows set
registered with the types they have in code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.settings import Settings
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
ENGAGE_SERVICES = ("worker", "inbound", "web")
# What a deployment cannot leave to the embedded defaults of `engage dev`: each points at a service of the stack.
REQUIRED = ("TEMPORAL_ADDRESS", "DATABASE_URL", "SMTP_URL", "CALDAV_URL", "INBOUND_DOMAIN", "REPLY_SECRET")
PREFIX = Settings.model_config.get("env_prefix", "")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}: compose's interpolation forms.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the list form: ["NAME=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _interpolate(value: Any) -> str:
    """The value compose would pass with an empty shell environment, except that `:?` (required) variables get a
    stand-in: the test checks that their value parses, not that the CI machine has a secret."""
    def one(match: re.Match[str]) -> str:
        op, arg = match.group("op"), match.group("arg")
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"stand-in-for-{match.group('name').lower()}"
        return ""

    return INTERPOLATION.sub(one, str(value)).replace("$$", "$")


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ENGAGE_SERVICES)
def test_engage_services_set_only_settings_the_code_reads(compose: dict[str, Any], name: str) -> None:
    env = _environment(compose["services"][name])
    fields = {f"{PREFIX}{field}".upper() for field in Settings.model_fields}
    engage_names = {key for key in env if key.startswith(PREFIX)}
    unknown = sorted(engage_names - fields)
    assert not unknown, f"{name}: {unknown} are not fields of schemas.settings.Settings (a typo, or a setting to add)"
    missing = [key for key in REQUIRED if f"{PREFIX}{key}" not in env]
    assert not missing, f"{name}: a deployment needs {[PREFIX + m for m in missing]}"
    # Every value, once compose has interpolated its defaults, is one the code accepts (ports are ints, ...).
    values = {key.removeprefix(PREFIX).lower(): _interpolate(value) for key, value in env.items()
              if key.startswith(PREFIX)}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]
    assert settings.temporal_address == "temporal:7233"
    assert settings.database_label() == "postgres:5432/engage"


def test_engage_services_point_at_services_of_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = {key: _interpolate(value) for key, value in _environment(services["worker"]).items()}
    hosts = {
        "ENGAGE_TEMPORAL_ADDRESS": env["ENGAGE_TEMPORAL_ADDRESS"].split(":")[0],
        "ENGAGE_DATABASE_URL": re.sub(r".*@([^:/]+).*", r"\1", env["ENGAGE_DATABASE_URL"]),
        "ENGAGE_SMTP_URL": re.sub(r"^\w+://([^:/]+).*", r"\1", env["ENGAGE_SMTP_URL"]),
        "ENGAGE_CALDAV_URL": re.sub(r"^\w+://([^:/]+).*", r"\1", env["ENGAGE_CALDAV_URL"]),
    }
    for key, host in hosts.items():
        assert host in services, f"{key} points at {host!r}, which is not a service of docker-compose.yml"
    # The inbound server listens where its port is published, on every interface of its container.
    inbound = _environment(services["inbound"])
    assert str(inbound["ENGAGE_INBOUND_HOST"]) == "0.0.0.0"
    assert any(str(port).endswith(f":{inbound['ENGAGE_INBOUND_PORT']}") for port in services["inbound"]["ports"])
    assert services["inbound"]["command"][:2] == ["engage", "inbox"]
    # The check-in page likewise, and the links in the mails lead to it.
    web = _environment(services["web"])
    assert str(web["ENGAGE_WEB_HOST"]) == "0.0.0.0"
    assert any(str(port).endswith(f":{web['ENGAGE_WEB_PORT']}") for port in services["web"]["ports"])
    assert services["web"]["command"][:2] == ["engage", "web"]
    assert _interpolate(env["ENGAGE_PUBLIC_URL"]).endswith(f":{web['ENGAGE_WEB_PORT']}")


def test_start_order_waits_for_health_and_one_shot_setup(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    assert waits_for("temporal-schema") == {"postgres": "service_healthy"}
    assert waits_for("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert waits_for("temporal-register") == {"temporal": "service_healthy"}
    assert waits_for("temporal-ui") == {"temporal": "service_healthy"}
    for name in ENGAGE_SERVICES:
        assert waits_for(name)["temporal-register"] == "service_completed_successfully"
        assert waits_for(name)["postgres"] == "service_healthy"
    for name in ("mailpit", "radicale"):
        assert waits_for("worker")[name] == "service_healthy"
    # Every long-running service says when it is healthy; the one-shots are judged by their exit code.
    long_running = [n for n, s in services.items() if n not in ("temporal-schema", "temporal-register")]
    assert [n for n in long_running if "healthcheck" not in services[n]] == []
    # The schema job covers both of Temporal's databases with the postgres12 plugin; the server uses the same.
    schema = (ROOT / "deploy" / "temporal" / "setup-schema.sh").read_text()
    assert "--plugin postgres12" in schema
    for step in ("create", "setup-schema -v 0.0", "update-schema -d", "$SCHEMA/$dir/versioned"):
        assert step in schema, step
    db_env = _environment(services["temporal"])
    assert db_env["DB"] == "postgres12"
    assert {db_env["DBNAME"], db_env["VISIBILITY_DBNAME"]} == {"temporal", "temporal_visibility"}
    assert not any("auto-setup" in str(s.get("image", "")) for s in services.values())


def test_registered_search_attributes_are_those_of_the_code(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["temporal-register"]["command"])
    registered = dict(re.findall(r"^\s*register (\w+) (\w+)\s*$", script, flags=re.MULTILINE))
    cli_type = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int"}
    expected = {key.name: cli_type[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
                for key in ALL_KEYS}
    assert registered == expected


def test_worker_image_runs_the_worker_and_serves_engage_inbox() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^RUN pip install \.(\s|$)", dockerfile, flags=re.MULTILINE), "a non-editable install"
    assert 'CMD ["python", "-m", "worker"]' in dockerfile
    # Everything the package is built from is copied into the image.
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, flags=re.MULTILINE), package
    for module in project["tool"]["setuptools"]["py-modules"]:
        assert f"{module}.py" in dockerfile


def test_deploy_scripts_parse() -> None:
    for script in ("deploy/postgres/init-databases.sh", "deploy/temporal/setup-schema.sh"):
        result = subprocess.run(["sh", "-n", str(ROOT / script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"
    register = yaml.safe_load(COMPOSE.read_text())["services"]["temporal-register"]["command"][0]
    result = subprocess.run(["sh", "-n", "-c", register.replace("$$", "$")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------------------
# Passwords: every one comes from .env and is required; none is written in the file
# ---------------------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET", re.IGNORECASE)
USER_PASSWORD_NAME = re.compile(r"_AUTH$")  # Mailpit's MP_UI_AUTH: "user:password"
REQUIRED_INTERPOLATION = re.compile(r"\$\{\w+:\?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^/@:\s]+:([^@\s]*)@")


def _values(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, name, raw value) of every environment entry of every service, and every config's content."""
    found = [(service, str(name), str(value)) for service, spec in compose["services"].items()
             for name, value in _environment(spec).items() if value is not None]
    found += [(f"configs.{name}", name, str(spec.get("content", "")))
              for name, spec in compose.get("configs", {}).items()]
    return found


def test_no_service_has_a_literal_password(compose: dict[str, Any]) -> None:
    literal = []
    for where, name, raw in _values(compose):
        # What is left of the value once the required variables are taken out must hold no password.
        stripped = REQUIRED_INTERPOLATION.sub("", raw)
        with_defaults = _interpolate(stripped)
        if SECRET_NAME.search(name) and (with_defaults or not REQUIRED_INTERPOLATION.search(raw)):
            literal.append(f"{where}: {name}")
        if (USER_PASSWORD_NAME.search(name) or where.startswith("configs.")) and ":" in with_defaults:
            if any(line.split(":", 1)[1].strip() for line in with_defaults.splitlines() if ":" in line):
                literal.append(f"{where}: {name} (user:password)")
        if any(password for password in URL_PASSWORD.findall(with_defaults)):
            literal.append(f"{where}: {name} (a password in a URL)")
    assert not literal, f"passwords written in docker-compose.yml instead of required from .env: {literal}"


def test_every_secret_variable_is_required() -> None:
    """`${NAME:?message}`, never `${NAME:-default}` or a bare `${NAME}` that compose would leave empty."""
    loose = sorted({m.group(0) for m in INTERPOLATION.finditer(COMPOSE.read_text())
                    if SECRET_NAME.search(m.group("name")) and m.group("op") != ":?"})
    assert not loose, f"secrets with a default or allowed empty: {loose}"


def test_env_example_lists_every_required_variable_and_how_to_make_it() -> None:
    required = {m.group("name") for m in INTERPOLATION.finditer(COMPOSE.read_text()) if m.group("op") == ":?"}
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^(\w+)=\s*$", example, flags=re.MULTILINE))
    assert required == listed, f"required by compose {sorted(required)}, listed empty in .env.example {sorted(listed)}"
    assert "openssl rand -hex 32" in example
    assert ".env" in (ROOT / ".gitignore").read_text().split()
