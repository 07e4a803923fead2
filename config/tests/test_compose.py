"""compose.yaml against the Compose Specification's JSON schema, and the promises the deployment docs make.

The schema is the one check-jsonschema ships (its vendored copy of compose-spec's `compose-spec.json`), so it
comes from a registry package, not from this repository.
"""

import json
import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "scheduler", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # resolves the `<<:` merge keys


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def _script_default(script: str, variable: str) -> int:
    match = re.search(rf"\${{{variable}:-(\d+)}}", (ROOT / "docker" / script).read_text())
    assert match, f"docker/{script} does not read {variable}"
    return int(match.group(1))


def test_compose_file_is_valid_against_the_compose_specification(compose, schema):
    assert schema["title"] == "Compose Specification"
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)

    errors = [f"{list(e.path)}: {e.message}" for e in validator_class(schema).iter_errors(compose)]

    assert errors == []


def test_the_schema_does_catch_a_broken_compose_file(compose, schema):
    broken = {**compose, "services": {**compose["services"], "web": {**compose["services"]["web"], "restart": 3}}}

    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_every_app_service_starts_through_an_executable_script_in_docker(compose):
    for name in APP_SERVICES:
        command = compose["services"][name]["command"]
        script = ROOT / command[0]
        assert command[0].startswith("docker/") and script.is_file(), name
        assert os.access(script, os.X_OK), f"{command[0]} is not executable"


def test_exactly_one_consumer_enqueues_periodic_tasks(compose):
    services = compose["services"]
    schedulers = [name for name, s in services.items() if s.get("command") == ["docker/scheduler"]]

    assert schedulers == ["scheduler"]
    assert "replicas" not in services["scheduler"].get("deploy", {})
    assert "--no-periodic" in (ROOT / "docker" / "worker").read_text()
    assert "--no-periodic" not in (ROOT / "docker" / "scheduler").read_text()


def test_start_order_is_health_gated_and_migrations_run_once_first(compose):
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "scheduler", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name


def test_stop_grace_periods_outlast_the_graceful_timeouts(compose):
    services = compose["services"]
    gunicorn_conf = (ROOT / "docker" / "gunicorn.conf.py").read_text()
    graceful = int(re.search(r'"GUNICORN_GRACEFUL_TIMEOUT", "(\d+)"', gunicorn_conf).group(1))
    huey_timeout = _script_default("worker", "HUEY_SHUTDOWN_TIMEOUT")

    assert _seconds(services["web"]["stop_grace_period"]) > graceful
    for name in ("worker", "scheduler"):
        assert _seconds(services[name]["stop_grace_period"]) > huey_timeout, name
    assert _script_default("scheduler", "HUEY_SHUTDOWN_TIMEOUT") == huey_timeout


def test_secrets_come_from_env_and_only_web_is_published_on_loopback(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        assert services[name]["env_file"] == [{"path": ".env", "required": True}], name
        assert services[name]["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    text = (ROOT / "compose.yaml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${REDIS_PASSWORD:?" in text
    assert not re.search(r"(SECRET|PASSWORD|KEYS?)\s*[:=]\s*[\"']?[A-Za-z0-9]{16,}", text)
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])


def test_data_lives_in_named_volumes(compose):
    services = compose["services"]
    assert set(compose["volumes"]) >= {"pgdata", "redisdata", "uploads"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    for name in ("web", "worker", "scheduler"):
        assert "uploads:/app/data" in services[name]["volumes"], name


def test_dockerfile_is_multi_stage_slim_non_root_with_static_files_and_a_healthcheck():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, flags=re.MULTILINE)
    runtime = dockerfile.split("AS runtime", 1)[1]

    assert [name for _, name in stages] == ["build", "runtime"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^USER earworm", runtime, flags=re.MULTILINE)
    assert "collectstatic" in runtime
    assert re.search(r"^HEALTHCHECK .*docker/healthcheck", runtime, flags=re.MULTILINE)
    assert "pip install" not in runtime and "apt-get" not in runtime  # nothing built in the final image
    assert 'CMD ["docker/web"]' in runtime


def test_secrets_and_local_state_stay_out_of_the_build_context():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert {".env", "data/", ".git/", ".venv/"} <= set(ignored)
