"""Run a real Triton Inference Server locally (CPU) from the nvidia-pytriton wheel.

The wheel ships a `tritonserver` binary and the Python backend; this module turns them into a
one-call local server for the embedded default, tests and benchmarks:

- assembles a backend directory under var/triton/ (the wheel's backends plus the Python
  stub matching this interpreter), once, cached by a content stamp;
- starts tritonserver on free ports with the project's model repository and tells the
  copywriter model where its weights are (env COPYWRITER_MODEL_DIR);
- runs it in explicit model-control mode and loads the models itself, so a copywriter version
  published later (`copywriter/<n>/`, see `publish_version`) is loaded with `load_model`
  while the server keeps serving: no restart, no polling race with half-written directories,
  and the caller knows when the new version is ready (the load call returns then). Only the
  versions descended from the weights this server was started with are loaded (a version
  records its root weights), so versions published for the demo model never shadow a test's
  tiny model that shares the repository;
- puts this interpreter's LIBDIR first in LD_LIBRARY_PATH (the stub must load the same
  libpython as the packages it imports, or e.g. `ssl` fails with an undefined symbol), the
  wheel's vendored libraries after it, and this environment's bin/ first on PATH (the stub
  derives its sys.prefix, hence its site-packages, from the `python3` it finds there);
- waits for readiness with a timeout, failing with the server log's tail;
- stops with SIGTERM, then SIGKILL after a grace period.

Production runs the same model repository in the official Triton container instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "COPYWRITER",
    "DEFAULT_MODEL_REPOSITORY",
    "VERSION_FILE",
    "LocalTriton",
    "TritonStartError",
    "assemble_backend_dir",
    "find_tritonserver",
    "lineage_versions",
    "load_model",
    "model_versions",
    "version_info",
    "weights_digest",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "deploy" / "triton" / "models"
MODEL_DIR_ENV = "COPYWRITER_MODEL_DIR"
COPYWRITER = "copywriter"
# In a published version's directory: its weights, its root weights (version 1's), its parent.
VERSION_FILE = "copywriter_version.json"


def default_var_dir() -> Path:
    """Runtime state root: $COPYLOOP_VAR_DIR, else <repo>/var (gitignored)."""
    return Path(os.environ.get("COPYLOOP_VAR_DIR", REPO_ROOT / "var"))


# Log lines after which the server will never become ready (it may hang rather than exit).
_FATAL_LOG_MARKERS = (
    "error while loading shared libraries",
    "failed to load",
    "Stub process is unhealthy",
    "failed to initialize",
)


# ---- model versions ---------------------------------------------------------------------


def model_versions(repository: str | Path, model: str = COPYWRITER) -> list[int]:
    """The version directories of a model in the repository, ascending."""
    root = Path(repository) / model
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def version_info(repository: str | Path, version: int, model: str = COPYWRITER) -> dict[str, Any]:
    """A published version's pointer (model_dir, root, parent_version, ...); {} for a version
    whose weights come from the config / COPYWRITER_MODEL_DIR (version 1)."""
    pointer = Path(repository) / model / str(version) / VERSION_FILE
    if not pointer.is_file():
        return {}
    info: dict[str, Any] = json.loads(pointer.read_text())
    return info


def weights_digest(model_dir: str | Path) -> str:
    """A fingerprint of a model directory's JSON files (config, tokenizer, training manifest):
    it changes when the weights there are retrained, so versions fine-tuned from the old ones
    stop counting as descendants."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def lineage_versions(
    repository: str | Path, root_model_dir: str | Path | None, model: str = COPYWRITER
) -> list[int]:
    """The versions a server started with `root_model_dir` serves: those without a pointer
    (their weights are the root's) and those published from that root as it is now (same
    path and same `weights_digest`); all when None."""
    versions = model_versions(repository, model)
    if root_model_dir is None:
        return versions
    root = str(Path(root_model_dir).resolve())
    digest = weights_digest(root)
    kept = []
    for version in versions:
        info = version_info(repository, version, model)
        if info.get("root", root) == root and info.get("root_digest", digest) == digest:
            kept.append(version)
    return kept


def _config_json(repository: Path, model: str, versions: Sequence[int] | None) -> str | None:
    """The model's config.pbtxt as JSON with `specific { versions }`, for the load API's
    config override; None when every version the config's own policy names is wanted."""
    if versions is None:
        return None
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(
        (repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    config.version_policy.specific.versions[:] = list(versions)
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def load_model(
    grpc_url: str,
    repository: str | Path,
    model: str = COPYWRITER,
    *,
    root_model_dir: str | Path | None = None,
    timeout_s: float = 300.0,
) -> list[int]:
    """Asks a running Triton (explicit model control) to load `model`, serving the versions
    of `root_model_dir`'s lineage (every version when None); returns them. Versions already
    loaded keep serving while new ones load; the call returns when the load is done.
    Raises TritonStartError when Triton refuses or a version fails to load."""
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    repository = Path(repository)
    every = model_versions(repository, model)
    versions = lineage_versions(repository, root_model_dir, model) if root_model_dir else every
    if not versions:
        raise TritonStartError(f"{repository / model} has no version for {root_model_dir}")
    # The config's own policy (all) when it names exactly these versions: loading again then
    # loads only the new version directories. A changed config would reload every version.
    override = None if versions == every else versions
    client = triton_grpc.InferenceServerClient(grpc_url)
    try:
        client.load_model(
            model, config=_config_json(repository, model, override), client_timeout=timeout_s
        )
        ready = [v for v in versions if client.is_model_ready(model, str(v), client_timeout=30)]
    except InferenceServerException as exc:
        raise TritonStartError(f"loading {model} failed: {exc}") from exc
    finally:
        client.close()
    return ready


class TritonStartError(RuntimeError):
    """tritonserver could not be started or did not become ready; carries the log tail."""


@dataclass(frozen=True)
class TritonDistribution:
    """Where the wheel keeps the server binary, its backends and the Python stubs."""

    binary: Path
    backends: Path
    stubs: Path
    libs: Path  # the wheel's vendored shared libraries (the stub links libcudart from here)


def find_tritonserver() -> TritonDistribution:
    """Locate the tritonserver shipped in the nvidia-pytriton wheel."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonStartError("nvidia-pytriton is not installed (it ships tritonserver)")
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    libs = package.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():  # editable installs keep them inside the package
        libs = root / "external_libs"
    dist = TritonDistribution(
        root / "bin" / "tritonserver", root / "backends", root / "python_backend_stubs", libs
    )
    if not dist.binary.is_file():
        raise TritonStartError(f"tritonserver binary not found at {dist.binary}")
    return dist


def _stamp(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def assemble_backend_dir(var_dir: Path | None = None) -> Path:
    """Build <var>/triton/backends (wheel backends + this Python's stub); idempotent, cached.

    Built in a temporary directory and renamed into place, so concurrent callers never see a
    half-copied backend.
    """
    dist = find_tritonserver()
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist.stubs / python_version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonStartError(f"the wheel has no Python backend stub for Python {python_version}")
    sources = [p for p in dist.backends.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    stamp = _stamp([*sources, stub])
    root = (var_dir or default_var_dir()) / "triton"
    target = root / f"backends-{stamp}"
    if (target / "python" / "triton_python_backend_stub").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="backends-", dir=root))
    try:
        shutil.copytree(
            dist.backends, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy2(stub, staging / "python" / "triton_python_backend_stub")
        try:
            staging.rename(target)
        except OSError:  # another process won the race; theirs is identical
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a server's process group (its own session: only its stubs)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(model_dir: Path | None, extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    wheel_libs = str(find_tritonserver().libs)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, env.get("LD_LIBRARY_PATH", ""), wheel_libs) if p
    )
    # The stub embeds Python in isolated mode (PYTHONPATH is ignored) and finds its prefix
    # from the `python3` on PATH: putting this environment's bin/ first makes it read this
    # venv's pyvenv.cfg, so it imports this venv's packages (torch, transformers, numpy<2).
    env["PATH"] = os.pathsep.join(
        p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p
    )
    site_packages = sysconfig.get_paths()["purelib"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site_packages, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if model_dir is not None:
        env[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    env.update(extra)
    return env


class LocalTriton:
    """A tritonserver child process serving the project's model repository.

    Use `with LocalTriton(model_dir=...) as triton:` (or `async with`), or start()/stop().
    `grpc_url` is what `TritonLLMClient` takes.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        model_repository: str | Path = DEFAULT_MODEL_REPOSITORY,
        *,
        var_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        startup_timeout_s: float = 180.0,
        stop_grace_s: float = 15.0,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.model_repository = Path(model_repository).resolve()
        self.var_dir = Path(var_dir) if var_dir is not None else default_var_dir()
        self.host = host
        self._requested_ports = (grpc_port, http_port, metrics_port)
        self.grpc_port = self.http_port = self.metrics_port = 0
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.log_verbose = log_verbose
        self.extra_args = tuple(extra_args)
        self.extra_env = dict(env or {})
        self.log_path: Path | None = None
        self.loaded_versions: dict[str, list[int]] = {}  # model -> versions it serves
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    # ---- addresses ------------------------------------------------------------------
    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self._client_host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.metrics_port}/metrics"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, max_chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(errors="replace")[-max_chars:]

    # ---- lifecycle ------------------------------------------------------------------
    def _command(self, backend_dir: Path) -> list[str]:
        binary = find_tritonserver().binary
        return [
            str(binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--strict-readiness=true",
            "--exit-on-error=true",
            "--model-control-mode=explicit",  # start() loads; load_model() adds versions
            "--disable-auto-complete-config",
            f"--log-verbose={self.log_verbose}",
            *self.extra_args,
        ]

    def start(self) -> LocalTriton:
        """Start the server and block until it and its models are ready."""
        if self.is_running():
            return self
        if not self.model_repository.is_dir():
            raise TritonStartError(f"model repository not found: {self.model_repository}")
        if self.model_dir is not None and not (self.model_dir / "config.json").is_file():
            raise TritonStartError(f"{self.model_dir} is not a Hugging Face model directory")
        backend_dir = assemble_backend_dir(self.var_dir)
        logs = self.var_dir / "triton" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        last_error: TritonStartError | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            grpc, http, metrics = self._requested_ports
            self.grpc_port, self.http_port = grpc or _free_port(), http or _free_port()
            self.metrics_port = metrics or _free_port()
            self.log_path = logs / f"tritonserver-{os.getpid()}-{self.grpc_port}.log"
            self._log_handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
            self._process = subprocess.Popen(
                self._command(backend_dir),
                stdout=self._log_handle,
                stderr=subprocess.STDOUT,
                env=_server_env(self.model_dir, self.extra_env),
                start_new_session=True,  # Ctrl-C in a terminal goes to us, we stop it cleanly
            )
            try:
                self._wait_ready()
                self._load_models()
                return self
            except TritonStartError as exc:
                last_error = exc
                self.stop()
                if "address already in use" not in str(exc).lower() or any(self._requested_ports):
                    raise
        assert last_error is not None
        raise last_error

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise TritonStartError(
                    f"tritonserver exited with code {code} during start-up; log tail:\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            tail = self.log_tail(20000)
            fatal = next((m for m in _FATAL_LOG_MARKERS if m.lower() in tail.lower()), None)
            if fatal:
                raise TritonStartError(
                    f"tritonserver failed to start ({fatal!r}); log tail:\n{self.log_tail()}"
                )
            time.sleep(0.25)
        raise TritonStartError(
            f"tritonserver not ready after {self.startup_timeout_s:.0f}s; log tail:\n"
            f"{self.log_tail()}"
        )

    def _load_models(self) -> None:
        """Loads every model of the repository; the copywriter with the versions of this
        server's weights (see `lineage_versions`)."""
        for config in sorted(self.model_repository.glob("*/config.pbtxt")):
            name = config.parent.name
            root = self.model_dir if name == COPYWRITER else None
            try:
                self.loaded_versions[name] = load_model(
                    self.grpc_url,
                    self.model_repository,
                    name,
                    root_model_dir=root,
                    timeout_s=self.startup_timeout_s,
                )
            except TritonStartError as exc:
                raise TritonStartError(f"{exc}; log tail:\n{self.log_tail()}") from exc

    def load_model(self, model: str = COPYWRITER) -> list[int]:
        """Loads the model again (e.g. after a version was published): the new versions of
        this server's lineage start serving, the loaded ones serve on meanwhile."""
        root = self.model_dir if model == COPYWRITER else None
        self.loaded_versions[model] = load_model(
            self.grpc_url,
            self.model_repository,
            model,
            root_model_dir=root,
            timeout_s=self.startup_timeout_s,
        )
        return self.loaded_versions[model]

    def stop(self) -> None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL after the grace period.

        Finally the process group is killed: a Python backend stub whose model failed to
        initialise outlives the server (and ignores SIGTERM); nothing else is in the group.
        """
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_grace_s)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid)
                    process.wait(timeout=10)
            _kill_group(process.pid)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    # ---- helpers --------------------------------------------------------------------
    def model_statistics(self, model_name: str = "copywriter") -> dict[str, Any]:
        """Triton's inference statistics for a model (HTTP API), e.g. to see batching."""
        url = f"{self.http_url}/v2/models/{model_name}/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            stats: dict[str, Any] = json.loads(response.read())
            return stats

    # ---- context managers -----------------------------------------------------------
    def __enter__(self) -> LocalTriton:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalTriton:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __del__(self) -> None:  # last resort: never leave a server behind
        if getattr(self, "_process", None) is not None:
            self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m copyloop.generation.triton_local",
        description="Run tritonserver with the copyloop model repository until Ctrl-C.",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        required=True,
        help="Hugging Face model directory for the copywriter model",
    )
    parser.add_argument("--model-repository", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-verbose", type=int, default=0)
    args = parser.parse_args(argv)
    triton = LocalTriton(
        args.model_dir,
        args.model_repository,
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
    )
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        triton.start()
        print(
            f"tritonserver ready: grpc {triton.grpc_url}, http {triton.http_url}, "
            f"metrics {triton.metrics_url}; log {triton.log_path}. Ctrl-C stops it.",
            flush=True,
        )
        while not stop_requested and triton.is_running():
            time.sleep(0.5)
        if not triton.is_running() and not stop_requested:
            print(f"tritonserver exited; log tail:\n{triton.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        pass
    except TritonStartError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        triton.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
