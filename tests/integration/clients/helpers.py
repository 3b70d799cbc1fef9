"""Shared pieces of the client tests: the threaded platform, the scripted gRPC server and the
test API keys (fixtures wrapping them are in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from copyloop.platform import Platform, PlatformConfig, start_platform
from copyloop.v1 import common_pb2, profile_pb2
from copyloop_client import ClientConfig, RetryPolicy

API_KEY = "client-key-a"
OTHER_API_KEY = "client-key-b"
API_KEYS = f"{API_KEY}:tenant-a,{OTHER_API_KEY}:tenant-b"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)
CLIENT_ENV_VARS = (
    "COPYLOOP_PROFILE_ADDR",
    "COPYLOOP_GENERATION_ADDR",
    "COPYLOOP_PREDICTION_ADDR",
    "COPYLOOP_FUSION_ADDR",
    "COPYLOOP_API_KEY",
    "COPYLOOP_TIMEOUT_S",
    "COPYLOOP_VAR_DIR",
)


class ThreadedPlatform:
    """The four services (copyloop.platform) on a private event loop in a daemon thread."""

    def __init__(
        self, var_dir: Path, prediction_overrides: dict[str, object] | None = None
    ) -> None:
        self.var_dir = var_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="platform-loop", daemon=True
        )
        self.thread.start()
        self.platform: Platform = self.run(
            start_platform(
                PlatformConfig(
                    var_dir=var_dir,
                    api_keys=API_KEYS,
                    embedder="hashing",
                    prediction_overrides=prediction_overrides or {},
                )
            )
        )

    def run(self, coro: object, timeout: float = 60.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def addresses(self) -> dict[str, str]:
        return self.platform.addresses()

    def write_platform_file(
        self, var_dir: Path, api_key: str = API_KEY, pid: int | None = None
    ) -> Path:
        """What `python -m copyloop.main --serve-only` writes while it serves."""
        var_dir.mkdir(parents=True, exist_ok=True)
        path = var_dir / "platform.json"
        path.write_text(
            json.dumps(
                {"pid": pid or os.getpid(), "api_key": api_key, "addresses": self.addresses()}
            )
        )
        return path

    def close(self) -> None:
        self.run(self.platform.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class ScriptedServer:
    """A real grpc server for ProfileService/GetUserProfile whose n-th attempt answers with
    `script[n]` (a status code, or OK); records every attempt's metadata."""

    address: str
    script: list[grpc.StatusCode] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(
        self, request: profile_pb2.GetUserProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.GetUserProfileResponse:
        with self.lock:
            n = len(self.attempts)
            self.attempts.append(dict(context.invocation_metadata()))
        if self.delay_s:
            time.sleep(self.delay_s)
        code = self.script[n] if n < len(self.script) else grpc.StatusCode.OK
        if code == grpc.StatusCode.OK:
            return profile_pb2.GetUserProfileResponse(
                profile=common_pb2.UserProfile(user_id=request.user_id, event_count=n + 1)
            )
        context.abort_with_status(rpc_status.to_status(_status(code)))
        raise AssertionError("unreachable")


def _status(code: grpc.StatusCode) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    packed = any_pb2.Any()
    if code == grpc.StatusCode.UNAVAILABLE:
        packed.Pack(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000)
            )
        )
        details.append(packed)
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        packed.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="user_id", description="required"
                    )
                ]
            )
        )
        details.append(packed)
    return status_pb2.Status(code=code.value[0], message=f"scripted {code.name}", details=details)


def scripted_config(
    server: ScriptedServer, retry: RetryPolicy = FAST_RETRY, timeout_s: float = 10.0
) -> ClientConfig:
    """Every service at the scripted server (only ProfileService/GetUserProfile answers)."""
    return ClientConfig(
        addresses={s: server.address for s in ("profile", "generation", "prediction", "fusion")},
        api_key=API_KEY,
        timeout_s=timeout_s,
        retry=retry,
    )


def catalog_rows(prefix: str) -> list[dict[str, object]]:
    """Twelve items in two top categories, as plain dicts (the SDK's input shape)."""
    rows: list[dict[str, object]] = []
    for n in range(6):
        rows.append(
            {
                "item_id": f"{prefix}-kitchen-{n}",
                "title": f"Copper Pan {n}",
                "brand": "Panco",
                "category_path": ["Kitchen", "Cookware"],
                "price": 20.0 + n,
                "stock": 5,
                "selling_points": ["even heating", "oven safe"],
                "tags": ["gift"],
            }
        )
        rows.append(
            {
                "item_id": f"{prefix}-garden-{n}",
                "title": f"Garden Hose {n}",
                "brand": "Greenly",
                "category_path": ["Garden", "Watering"],
                "price": 30.0 + n,
                "stock": 5,
                "selling_points": ["kink free"],
                "tags": [],
            }
        )
    return rows


def kitchen_events(prefix: str, user_id: str, count: int = 12) -> list[dict[str, object]]:
    """A shopper who keeps looking at (and buys) kitchen items."""
    now = time.time()
    events: list[dict[str, object]] = []
    for n in range(count):
        events.append(
            {
                "event_id": f"{prefix}-{user_id}-{n}",
                "user_id": user_id,
                "type": "purchase" if n % 4 == 3 else "view",
                "item_id": f"{prefix}-kitchen-{n % 6}",
                "event_time": now - 3600 * (count - n),
            }
        )
    return events
