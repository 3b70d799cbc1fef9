"""docker-compose.yml wiring, checked offline (no Docker): every address points at a service and
a port it listens on, every container is health-checked, Triton gets a GPU, Prometheus scrapes
the four metrics ports; and the gRPC health probe the compose file runs really works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from tests.unit.deploy.compose_file import (
    environment,
    exposed_ports,
    load_compose,
    parse_duration_s,
)
from tests.unit.deploy.service_table import (
    POSTGRES_PORT,
    REPO,
    SERVICES,
    TRITON_HTTP_PORT,
    is_address_var,
    split_host_port,
)

COMPOSE_PATH = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE_PATH)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _healthy_dependency(service: dict[str, Any], target: str) -> bool:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return False  # the short form means "started", not "healthy"
    return (depends.get(target) or {}).get("condition") == "service_healthy"


def _mount_targets(service: dict[str, Any]) -> list[str]:
    targets = []
    for volume in service.get("volumes", []):
        targets.append(volume["target"] if isinstance(volume, dict) else volume.split(":")[1])
    return targets


def _init_databases(compose: dict[str, Any]) -> set[str]:
    script = compose["configs"]["postgres-init"]["content"]
    return set(re.findall(r"CREATE DATABASE\s+(\w+)", script, flags=re.IGNORECASE))


def test_every_container_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_runs_its_module_on_its_ports(services: dict[str, Any], name: str) -> None:
    facts, service = SERVICES[name], services[name]
    env = environment(service)
    assert service["command"] == facts.command
    assert env[f"{facts.env_prefix}HOST"] == "0.0.0.0"
    assert int(env[f"{facts.env_prefix}PORT"]) == facts.grpc_port
    assert int(env[f"{facts.env_prefix}METRICS_PORT"]) == facts.metrics_port
    assert {facts.grpc_port, facts.metrics_port} <= exposed_ports(service)
    assert service["build"]["target"] == "runtime"
    # The probe asks the service's own gRPC port, inside its container.
    probe = " ".join(service["healthcheck"]["test"])
    assert f"'127.0.0.1:{facts.grpc_port}'" in probe and "HealthCheckResponse.SERVING" in probe


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_containers_are_locked_down(services: dict[str, Any], name: str) -> None:
    service, prefix = services[name], SERVICES[name].env_prefix
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert "ALL" in service["cap_drop"]
    grace = float(environment(service)[f"{prefix}SHUTDOWN_GRACE_S"])
    assert parse_duration_s(service["stop_grace_period"]) > grace, (
        "SIGKILL would cut the drain short"
    )


def test_every_address_points_at_a_listening_port_of_a_healthy_dependency(
    services: dict[str, Any],
) -> None:
    checked = 0
    for name, service in services.items():
        for var, value in environment(service).items():
            if not is_address_var(var):
                continue
            host, port = split_host_port(value)
            assert host in services, f"{name}.{var}={value}: no service {host!r}"
            assert port in exposed_ports(services[host]), (
                f"{name}.{var}: {host} does not expose {port}"
            )
            assert _healthy_dependency(service, host), f"{name} must wait for {host} to be healthy"
            checked += 1
    # FusionService's three addresses, GenerationService's Triton URL and prediction address.
    assert checked == 5


def test_fusion_addresses_reach_the_other_services_grpc_ports(services: dict[str, Any]) -> None:
    env = environment(services["fusion"])
    for other in ("profile", "generation", "prediction"):
        assert split_host_port(env[f"COPYLOOP_FUSION_{other.upper()}_ADDR"]) == (
            other,
            SERVICES[other].grpc_port,
        )
    assert split_host_port(
        environment(services["generation"])["COPYLOOP_GENERATION_TRITON_URL"]
    ) == ("triton", 8001)


def test_each_service_has_its_own_database_on_the_postgres_service(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    created = _init_databases(compose)
    databases = set()
    for name, facts in SERVICES.items():
        url = make_url(environment(services[name])[f"{facts.env_prefix}DATABASE_URL"])
        assert url.get_backend_name() == "postgresql"
        assert url.host in services and (url.port or POSTGRES_PORT) in exposed_ports(
            services[url.host]
        )
        assert url.database in created, f"{url.database} is not created by the init script"
        assert url.password == environment(services["postgres"])["POSTGRES_PASSWORD"]
        assert _healthy_dependency(services[name], url.host)
        databases.add(url.database)
    assert len(databases) == len(SERVICES)
    # Over TCP: while the init script runs, the image's temporary server listens on its socket
    # only, so a TCP probe turns healthy only once the databases exist.
    probe = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in probe and probe[probe.index("-h") + 1] == "127.0.0.1"


def test_triton_reserves_a_gpu_and_mounts_the_model_repository_read_only(
    services: dict[str, Any],
) -> None:
    triton = services["triton"]
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        "gpu" in d["capabilities"] and d.get("driver") == "nvidia" and d.get("count") == 1
        for d in devices
    )
    repo_mounts = [v for v in triton["volumes"] if v.split(":")[1] == "/models"]
    assert repo_mounts, "the model repository is not mounted at /models"
    host_path, _, mode = repo_mounts[0].split(":")
    assert mode == "ro"
    assert (REPO / host_path / "copywriter" / "config.pbtxt").exists()
    assert "--model-repository=/models" in triton["command"]
    probe = " ".join(triton["healthcheck"]["test"])
    assert f"127.0.0.1:{TRITON_HTTP_PORT}/v2/health/ready" in probe
    assert TRITON_HTTP_PORT in exposed_ports(triton)
    weights = environment(triton)["COPYWRITER_MODEL_DIR"]
    assert any(weights.startswith(t) for t in _mount_targets(triton))


def test_triton_loads_published_copywriter_versions_without_a_restart(
    services: dict[str, Any],
) -> None:
    """Explicit model control (the cycle's load call reaches it from the host) and the folder
    with published versions' weights mounted where the model looks for them by name."""
    triton = services["triton"]
    command = triton["command"]
    assert "--model-control-mode=explicit" in command and "--load-model=copywriter" in command
    root = environment(triton)["COPYWRITER_WEIGHTS_ROOT"]
    host_of = {v.split(":")[1]: v.split(":")[0] for v in triton["volumes"]}
    assert host_of[root] == "./var/models", "not where the copywriter cycle writes new weights"
    assert any(str(p).startswith("127.0.0.1:8001:") for p in triton["ports"])


def test_generation_reads_the_tokenizer_from_the_weights_triton_serves(
    services: dict[str, Any],
) -> None:
    model_dir = environment(services["generation"])["COPYLOOP_GENERATION_MODEL_DIR"]
    assert model_dir == environment(services["triton"])["COPYWRITER_MODEL_DIR"]
    host_of = {v.split(":")[1]: v.split(":")[0] for v in services["generation"]["volumes"]}
    triton_host_of = {v.split(":")[1]: v.split(":")[0] for v in services["triton"]["volumes"]}
    assert host_of[model_dir] == triton_host_of[model_dir]


def test_prediction_model_root_is_on_a_writable_volume(services: dict[str, Any]) -> None:
    root = environment(services["prediction"])["COPYLOOP_PREDICTION_MODEL_ROOT"]
    writable = [v.split(":")[1] for v in services["prediction"]["volumes"] if not v.endswith(":ro")]
    assert any(root.startswith(t) for t in writable)


def test_prometheus_scrapes_the_four_metrics_ports(services: dict[str, Any]) -> None:
    mount = next(v for v in services["prometheus"]["volumes"] if v.endswith("prometheus.yml:ro"))
    config = yaml.safe_load((REPO / mount.split(":")[0]).read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name, facts in SERVICES.items():
        env = environment(services[name])
        assert f"{name}:{env[f'{facts.env_prefix}METRICS_PORT']}" in targets
        assert f"{name}:{facts.metrics_port}" in targets
    for target in targets:
        host, port = split_host_port(target)
        assert port in exposed_ports(services[host]), f"{host} does not expose {port}"


def test_default_api_keys_accept_the_demo_key(services: dict[str, Any]) -> None:
    for name in SERVICES:
        keys = dict(
            pair.split(":", 1)
            for pair in environment(services[name])["COPYLOOP_API_KEYS"].split(",")
        )
        assert "demo-key" in keys


def _profile_probe_code(services: dict[str, Any]) -> str:
    test = services["profile"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return test[3]


async def test_the_compose_health_probe_passes_on_a_serving_service_and_fails_without_one(
    services: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Runs the exact `python -c` probe from the compose file against a real ProfileService
    (its port swapped for the test's free one), then against a port nothing listens on."""
    from copyloop.profile.main import start_profile_service
    from copyloop.profile.settings import ProfileSettings

    code = _profile_probe_code(services)
    service = await start_profile_service(
        ProfileSettings(
            port=0,
            database_url=f"sqlite:///{tmp_path / 'p.db'}",
            readiness_interval_s=0.2,
        )
    )
    try:
        probe = code.replace("127.0.0.1:50051", service.address)
        ok = await _run(probe)
        assert ok.returncode == 0, ok.stderr
    finally:
        await service.stop(0)
    down = await _run(code.replace("127.0.0.1:50051", service.address))
    assert down.returncode != 0


async def _run(code: str) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
