"""Starting, stopping and checking the local platform (`python -m copyloop.main --serve-only`)
from a shell, without keeping a terminal open for it.

The contract with the main job: once serving it writes var/platform.json = {"pid", "api_key",
"addresses": {service: host:port}, "triton_url", "model_dir"} and removes it on exit; SIGTERM
drains and stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from copyloop_client.config import SERVICES

__all__ = [
    "SERVE_FLAG",
    "PlatformError",
    "PlatformInfo",
    "PlatformStatus",
    "health_status",
    "pid_alive",
    "platform_status",
    "read_platform_file",
    "start_platform",
    "stop_platform",
]

SERVE_FLAG = "--serve-only"
PLATFORM_FILE = "platform.json"
LOG_FILE = "platform.log"
POLL_S = 0.2


class PlatformError(RuntimeError):
    """Starting or stopping failed; the message says what to look at."""


@dataclass(frozen=True)
class PlatformInfo:
    pid: int
    api_key: str
    addresses: dict[str, str]


@dataclass(frozen=True)
class PlatformStatus:
    info: PlatformInfo | None
    running: bool
    health: dict[str, str]  # service -> SERVING / NOT_SERVING / UNREACHABLE ...
    note: str = ""

    @property
    def serving(self) -> bool:
        return (
            self.running and bool(self.health) and all(h == "SERVING" for h in self.health.values())
        )


def read_platform_file(path: Path) -> PlatformInfo | None:
    """None when absent; PlatformError when present but not the documented shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise PlatformError(
            f"{path} is unreadable ({exc}); is the platform still writing it?"
        ) from None
    try:
        addresses = {str(k): str(v) for k, v in data["addresses"].items()}
        return PlatformInfo(pid=int(data["pid"]), api_key=str(data["api_key"]), addresses=addresses)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PlatformError(f"{path} lacks pid/api_key/addresses") from None


def pid_alive(pid: int) -> bool:
    """True while the process exists (a zombie child of ours is reaped and counts as gone)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_platform_process(pid: int) -> bool:
    """Guards against signalling an unrelated process that reused a stale pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the file
    return SERVE_FLAG.encode() in cmdline


def health_status(address: str, service: str = "", timeout_s: float = 2.0) -> str:
    """grpc.health.v1 status name of `service` at `address` ("" = the whole server)."""
    if not address:
        return "UNKNOWN"
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return (
                "UNREACHABLE"
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                else exc.code().name
            )
    # grpc_health ships no type stubs (the reply is Any to mypy); the name is a str.
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


def platform_status(var_dir: Path, timeout_s: float = 2.0) -> PlatformStatus:
    path = var_dir / PLATFORM_FILE
    info = read_platform_file(path)
    if info is None:
        return PlatformStatus(None, False, {}, f"not running (no {path})")
    if not pid_alive(info.pid):
        return PlatformStatus(
            info, False, {}, f"not running (pid {info.pid} is gone; {path} is stale)"
        )
    health = {
        s: health_status(info.addresses[s], timeout_s=timeout_s)
        if s in info.addresses
        else "UNKNOWN"
        for s in SERVICES
    }
    return PlatformStatus(info, True, health, f"running (pid {info.pid})")


def start_platform(
    var_dir: Path,
    *,
    module: str = "copyloop.main",
    timeout_s: float = 180.0,
    python: str = sys.executable,
    extra_args: Sequence[str] = (),
) -> tuple[PlatformInfo, bool]:
    """Spawns the platform detached from this terminal (own session, output to
    var/platform.log) and waits until platform.json exists and every service in it is SERVING
    (FusionService alone is not enough: `platform status` right after must show all four).
    Returns (info, started_now); an already running platform is returned as is."""
    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / PLATFORM_FILE
    existing = read_platform_file(path)
    if existing is not None:
        if pid_alive(existing.pid):
            return existing, False
        path.unlink(missing_ok=True)  # left by a crashed run
    log_path = var_dir / LOG_FILE
    env = {**os.environ, "COPYLOOP_VAR_DIR": str(var_dir)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [python, "-m", module, SERVE_FLAG, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise PlatformError(
                f"the platform exited with code {code} before serving: "
                f"{_last_line(log_path) or 'no output'} (log: {log_path})"
            )
        info = _readable(path)
        if info is not None and _all_serving(info):
            return info, True
        time.sleep(POLL_S)
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    raise PlatformError(
        f"the platform was not serving after {timeout_s:.0f}s and was stopped; see {log_path}"
    )


def _all_serving(info: PlatformInfo) -> bool:
    return all(
        s in info.addresses and health_status(info.addresses[s], timeout_s=1.0) == "SERVING"
        for s in SERVICES
    )


def stop_platform(var_dir: Path, timeout_s: float = 30.0) -> tuple[PlatformInfo | None, str]:
    """SIGTERM to the pid in platform.json, then waits for the process to exit (it drains
    in-flight calls first). Returns (info, what happened)."""
    path = var_dir / PLATFORM_FILE
    info = read_platform_file(path)
    if info is None:
        return None, f"not running (no {path})"
    if not pid_alive(info.pid):
        path.unlink(missing_ok=True)
        return info, f"not running (pid {info.pid} is gone; removed the stale {path})"
    if not _is_platform_process(info.pid):
        raise PlatformError(
            f"pid {info.pid} in {path} is not a copyloop platform (pid reused?); "
            f"remove {path} if the platform is gone"
        )
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(info.pid):
        if time.monotonic() > deadline:
            raise PlatformError(
                f"pid {info.pid} did not exit within {timeout_s:.0f}s of SIGTERM; "
                f"`kill -9 {info.pid}` ends it without draining"
            )
        time.sleep(POLL_S)
    path.unlink(missing_ok=True)  # a clean exit removed it already; a crash may not have
    return info, f"stopped (pid {info.pid})"


def _readable(path: Path) -> PlatformInfo | None:
    """The file may be half-written while we poll; that counts as not there yet."""
    try:
        return read_platform_file(path)
    except PlatformError:
        return None


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [
            line.strip()
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.strip()
        ]
        if lines:
            return lines[-1][:300]
    return ""
