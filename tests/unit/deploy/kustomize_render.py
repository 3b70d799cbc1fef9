"""Renders a kustomization: with `kustomize build` or `kubectl kustomize` when either is on the
PATH, else with a small Python renderer that implements exactly the kustomize features
deploy/k8s uses (resources, namespace, images, replicas, secretGenerator literals without name
hashes) and refuses any other, so it can never silently render something kustomize would not.
Where a binary exists, a test checks both renderers give the same objects."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "replicas",
    "secretGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class UnsupportedKustomization(Exception):
    """The kustomization uses a feature the fallback renderer does not implement."""


def kustomize_binary() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render_with_binary(directory: Path, command: list[str]) -> list[Manifest]:
    out = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render(directory: Path) -> list[Manifest]:
    command = kustomize_binary()
    return render_with_binary(directory, command) if command else render_fallback(directory)


# ---------------------------------------------------------------------------------------------
# The fallback renderer
# ---------------------------------------------------------------------------------------------


def _kustomization(directory: Path) -> Manifest:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.exists():
            spec = yaml.safe_load(path.read_text()) or {}
            unknown = set(spec) - SUPPORTED_KEYS
            if unknown:
                raise UnsupportedKustomization(f"{path}: {sorted(unknown)}")
            return spec
    raise FileNotFoundError(f"no kustomization in {directory}")


def render_fallback(directory: Path) -> list[Manifest]:
    spec = _kustomization(directory)
    manifests: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            manifests += render_fallback(path)
        else:
            manifests += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    manifests += _generated_secrets(spec)
    for image in spec.get("images", []):
        _set_image(manifests, image)
    for replicas in spec.get("replicas", []):
        _set_replicas(manifests, replicas["name"], int(replicas["count"]))
    if "namespace" in spec:
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return manifests


def _generated_secrets(spec: Manifest) -> list[Manifest]:
    generators = spec.get("secretGenerator", [])
    if generators and not spec.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise UnsupportedKustomization("secretGenerator name hashes are not implemented")
    secrets = []
    for generator in generators:
        unknown = set(generator) - {"name", "literals", "type"}
        if unknown:
            raise UnsupportedKustomization(f"secretGenerator keys {sorted(unknown)}")
        data = {}
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": generator["name"]},
                "type": generator.get("type", "Opaque"),
                "data": data,
            }
        )
    return secrets


def _containers(manifest: Manifest) -> list[Manifest]:
    if manifest["kind"] not in POD_TEMPLATE_KINDS:
        return []
    pod = manifest["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _split_image(image: str) -> tuple[str, str]:
    """("registry/name", ":tag" or "@digest" or "")."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(manifests: list[Manifest], rule: Manifest) -> None:
    for manifest in manifests:
        for container in _containers(manifest):
            name, suffix = _split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                suffix = "@" + rule["digest"]
            elif "newTag" in rule:
                suffix = ":" + str(rule["newTag"])
            container["image"] = name + suffix


def _set_replicas(manifests: list[Manifest], name: str, count: int) -> None:
    for manifest in manifests:
        if (
            manifest["kind"] in {"Deployment", "StatefulSet", "ReplicaSet"}
            and manifest["metadata"]["name"] == name
        ):
            manifest["spec"]["replicas"] = count


def by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def identity(manifest: Manifest) -> tuple[str, str, str, str]:
    meta = manifest["metadata"]
    return manifest["apiVersion"], manifest["kind"], meta.get("namespace", ""), meta["name"]
