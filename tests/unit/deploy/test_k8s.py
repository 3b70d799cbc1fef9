"""deploy/k8s: every overlay renders, every manifest validates against the Kubernetes schemas
(kubernetes-validate ships them: offline), and the objects are wired the way the services need:
gRPC probes on the gRPC port, resources, locked-down pods, a GPU for Triton, autoscalers on
fusion and prediction, disruption budgets, and secrets referenced, never inlined."""

from __future__ import annotations

import base64
import copy

import pytest
from sqlalchemy.engine import make_url
from tests.unit.deploy.kustomize_render import (
    Manifest,
    by_kind,
    identity,
    kustomize_binary,
    render,
    render_fallback,
    render_with_binary,
)
from tests.unit.deploy.service_table import (
    REPO,
    SERVICES,
    TRITON_GRPC_PORT,
    is_address_var,
    split_host_port,
)

K8S = REPO / "deploy" / "k8s"
OVERLAYS = {"dev": K8S / "overlays" / "dev", "production": K8S / "overlays" / "production"}
KUBERNETES_VERSIONS = ("1.30", "1.33")  # a supported-but-older and a recent release
SECRET_NAME = "copyloop-secrets"
SECRET_ENV = ("DATABASE_URL", "COPYLOOP_API_KEYS")
PRESTOP_SLEEP_S_MAX = 30

Rendered = tuple[str, list[Manifest]]  # (overlay name, its manifests)


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return request.param, render(OVERLAYS[request.param])


def _deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    return by_kind(manifests, "Deployment")


def _container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


def _container_port(container: Manifest, port: int | str) -> int:
    """A Service targetPort or probe port (number or name) -> the container's port number."""
    for p in container.get("ports", []):
        if port in (p["containerPort"], p.get("name")):
            return int(p["containerPort"])
    raise AssertionError(f"{container['name']} has no port {port!r}")


def _selects(selector: dict[str, str], deployment: Manifest) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _quantity(value: str | int) -> float:
    """CPU/memory quantities -> a comparable float (cores / bytes)."""
    text = str(value)
    suffixes = {
        "m": 1e-3,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
    }
    for suffix, factor in sorted(suffixes.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# ---------------------------------------------------------------------------------------------
# Rendering and schema validation
# ---------------------------------------------------------------------------------------------


def test_fallback_renderer_matches_kustomize_where_kustomize_exists() -> None:
    command = kustomize_binary()
    if command is None:
        pytest.skip(
            "neither kustomize nor kubectl is installed; the fallback renderer is used alone"
        )

    def normalised(manifests: list[Manifest]) -> dict[tuple[str, ...], Manifest]:
        out = {}
        for m in copy.deepcopy(manifests):
            if m["kind"] == "Secret":  # kustomize wraps long base64 lines
                m["data"] = {k: base64.b64decode(v).decode() for k, v in m.get("data", {}).items()}
            out[identity(m)] = m
        return out

    for name, path in OVERLAYS.items():
        assert normalised(render_fallback(path)) == normalised(render_with_binary(path, command)), (
            name
        )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schema(
    rendered: Rendered, version: str
) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed "
        "(add kubernetes-validate==1.37.0 to requirements.lock)",
    )
    _, manifests = rendered
    assert manifests
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(f"{name} @ {version}: {path}: {err.message}")


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """The validator really reads the manifests: a typo in a probe fails it."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = copy.deepcopy(_deployments(render(OVERLAYS["dev"]))["profile"])
    _container(deployment)["readinessProbe"]["grpcc"] = {"port": 50051}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_overlays_set_their_namespace_on_every_namespaced_object(rendered: Rendered) -> None:
    _, manifests = rendered
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    assert len(namespaces) == 1
    for m in manifests:
        if m["kind"] != "Namespace":
            assert m["metadata"].get("namespace") == namespaces[0], identity(m)


# ---------------------------------------------------------------------------------------------
# The four gRPC services
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_deployment_runs_the_service_with_grpc_probes_on_its_port(
    rendered: Rendered, name: str
) -> None:
    _, manifests = rendered
    facts = SERVICES[name]
    container = _container(_deployments(manifests)[name])
    env = _env(container)
    assert container["command"] == facts.command
    assert env[f"{facts.env_prefix}HOST"]["value"] == "0.0.0.0"
    assert int(env[f"{facts.env_prefix}PORT"]["value"]) == facts.grpc_port
    assert int(env[f"{facts.env_prefix}METRICS_PORT"]["value"]) == facts.metrics_port
    assert _container_port(container, "grpc") == facts.grpc_port
    assert _container_port(container, "metrics") == facts.metrics_port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        grpc_probe = container[probe].get("grpc")
        assert grpc_probe, f"{name}: {probe} is not a native gRPC probe"
        assert _container_port(container, grpc_probe["port"]) == facts.grpc_port
        assert (
            grpc_probe.get("service", "") == ""
        )  # overall health: SERVING only when deps are ready


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_deployment_has_requests_limits_and_a_locked_down_pod(
    rendered: Rendered, name: str
) -> None:
    _, manifests = rendered
    deployment = _deployments(manifests)[name]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    resources = container["resources"]
    for resource in ("cpu", "memory"):
        request, limit = resources["requests"][resource], resources["limits"][resource]
        assert 0 < _quantity(request) <= _quantity(limit), f"{name} {resource}: {request} > {limit}"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, (
        "read-only root needs a writable /tmp"
    )
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_termination_grace_outlasts_prestop_and_the_services_drain(
    rendered: Rendered, name: str
) -> None:
    _, manifests = rendered
    deployment = _deployments(manifests)[name]
    container = _container(deployment)
    grace_s = float(_env(container)[f"{SERVICES[name].env_prefix}SHUTDOWN_GRACE_S"]["value"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < pre_stop <= PRESTOP_SLEEP_S_MAX
    assert (
        deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace_s + pre_stop
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_deployment_has_a_service_and_a_disruption_budget(
    rendered: Rendered, name: str
) -> None:
    _, manifests = rendered
    deployment = _deployments(manifests)[name]
    container = _container(deployment)
    service = by_kind(manifests, "Service")[name]
    assert _selects(service["spec"]["selector"], deployment)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["port"] == SERVICES[name].grpc_port
    assert _container_port(container, ports["grpc"]["targetPort"]) == SERVICES[name].grpc_port
    assert _container_port(container, ports["metrics"]["targetPort"]) == SERVICES[name].metrics_port
    budget = by_kind(manifests, "PodDisruptionBudget")[name]
    assert _selects(budget["spec"]["selector"]["matchLabels"], deployment)
    assert budget["spec"].get("minAvailable", 0) >= 1 or "maxUnavailable" in budget["spec"]


def test_addresses_resolve_to_a_service_port_that_reaches_the_container(rendered: Rendered) -> None:
    _, manifests = rendered
    services = by_kind(manifests, "Service")
    deployments = _deployments(manifests)
    checked = 0
    for deployment in deployments.values():
        for var, entry in _env(_container(deployment)).items():
            if not is_address_var(var):
                continue
            host, port = split_host_port(entry["value"])
            assert host in services, f"{var}: no Service {host!r}"
            service_port = next(
                (p for p in services[host]["spec"]["ports"] if p["port"] == port), None
            )
            assert service_port, f"{var}: Service {host} has no port {port}"
            backends = [
                d for d in deployments.values() if _selects(services[host]["spec"]["selector"], d)
            ]
            assert len(backends) == 1, f"Service {host} selects {len(backends)} Deployments"
            _container_port(_container(backends[0]), service_port["targetPort"])
            checked += 1
    assert checked == 5


def test_hpas_target_the_fusion_and_prediction_deployments(rendered: Rendered) -> None:
    _, manifests = rendered
    deployments = _deployments(manifests)
    hpas = by_kind(manifests, "HorizontalPodAutoscaler")
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}
    assert targets == {"fusion", "prediction"}
    for hpa in hpas.values():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment") and ref[
            "name"
        ] in deployments
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployments[ref["name"]]["spec"], (
            "a fixed replica count fights the HPA"
        )
        assert any(m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
        # CPU utilisation is relative to requests: without them the HPA cannot act.
        assert "cpu" in _container(deployments[ref["name"]])["resources"]["requests"]


# ---------------------------------------------------------------------------------------------
# Triton
# ---------------------------------------------------------------------------------------------


def test_triton_requests_a_gpu_and_is_probed_on_its_health_endpoints(rendered: Rendered) -> None:
    _, manifests = rendered
    triton = _deployments(manifests)["triton"]
    container = _container(triton)
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert int(container["resources"]["requests"]["nvidia.com/gpu"]) == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert _container_port(container, "grpc") == TRITON_GRPC_PORT
    assert "copyloop-triton" in container["image"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    weights = _env(container)["COPYWRITER_MODEL_DIR"]["value"]
    assert any(weights.startswith(path) and m.get("readOnly") for path, m in mounts.items())
    assert "/dev/shm" in mounts
    tolerations = triton["spec"]["template"]["spec"].get("tolerations", [])
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)


def test_triton_serves_the_repository_on_the_volume_with_explicit_model_control(
    rendered: Rendered,
) -> None:
    """A version the copywriter cycle publishes (a folder in the repository, weights under
    versions/) is loaded by Triton's load call: no new image, no restart."""
    _, manifests = rendered
    container = _container(_deployments(manifests)["triton"])
    args = container["args"]
    assert "--model-control-mode=explicit" in args and "--load-model=copywriter" in args
    repository = next(a.split("=", 1)[1] for a in args if a.startswith("--model-repository="))
    root = _env(container)["COPYWRITER_WEIGHTS_ROOT"]["value"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(repository.startswith(m) for m in mounts)
    assert any(root.startswith(m) for m in mounts)


def test_claimed_volumes_exist(rendered: Rendered) -> None:
    _, manifests = rendered
    claims = set(by_kind(manifests, "PersistentVolumeClaim"))
    for deployment in _deployments(manifests).values():
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------


def _secret_refs(manifests: list[Manifest]) -> set[tuple[str, str]]:
    refs = set()
    for deployment in _deployments(manifests).values():
        for entry in _env(_container(deployment)).values():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
    return refs


def test_credentials_are_referenced_from_a_secret_never_inlined(rendered: Rendered) -> None:
    _, manifests = rendered
    for name, deployment in _deployments(manifests).items():
        for var, entry in _env(_container(deployment)).items():
            if var.endswith(SECRET_ENV):
                assert "value" not in entry, f"{name}.{var} is inlined"
                assert entry["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
            value = str(entry.get("value", ""))
            assert "@" not in value and "demo-key" not in value, (
                f"{name}.{var} looks like a credential"
            )
    keys = {key for _, key in _secret_refs(manifests)}
    assert keys == {"api-keys"} | {f"{s}-database-url" for s in SERVICES}


def test_dev_overlay_generates_every_referenced_secret_key_with_per_service_databases() -> None:
    manifests = render(OVERLAYS["dev"])
    secrets = by_kind(manifests, "Secret")
    for name, key in _secret_refs(manifests):
        assert key in secrets[name]["data"], f"{name} lacks {key}"
    data = {k: base64.b64decode(v).decode() for k, v in secrets[SECRET_NAME]["data"].items()}
    assert "demo-key" in dict(p.split(":", 1) for p in data["api-keys"].split(","))
    databases = {make_url(data[f"{s}-database-url"]).database for s in SERVICES}
    assert databases == {f"copyloop_{s}" for s in SERVICES}


def test_production_overlay_ships_no_secret_and_documents_the_keys_it_needs() -> None:
    manifests = render(OVERLAYS["production"])
    assert not by_kind(manifests, "Secret"), "real secrets must be created out of band"
    readme = (REPO / "deploy" / "README.md").read_text()
    for _, key in _secret_refs(manifests):
        assert key in readme, f"deploy/README.md does not say how to create {key}"


def test_production_pins_registry_images() -> None:
    for deployment in _deployments(render(OVERLAYS["production"])).values():
        image = _container(deployment)["image"]
        assert "/" in image and not image.endswith((":dev", ":latest")), image


def test_base_is_namespace_free_and_secret_free() -> None:
    """Overlays decide both; a base that set them would leak into every environment."""
    manifests = render_fallback(K8S / "base")
    assert not [m for m in manifests if m["kind"] in {"Secret", "Namespace"}]
    assert all("namespace" not in m["metadata"] for m in manifests)
