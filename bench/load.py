"""A small ghz for machines without ghz: drives one unary RPC of a running server, read from the
same ghz config files (deploy/loadtest/*.json), and prints a ghz-like summary.

    .venv/bin/python bench/load.py deploy/loadtest/get_user_profile.json \
        --host 127.0.0.1:50051 --concurrency 16 --duration 10s

Why a second tool: the configs are the load-test contract, and ghz is a Go binary that is not on
every machine; this script runs the very same files (call, data with ghz template actions,
metadata) through grpc generic calls built from the protoset, so a config that works here works
with ghz and the other way round. It always stops by itself (a request count or a duration) and
only talks to loopback addresses: it is a benchmark, not a traffic generator for other hosts.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import random
import re
import socket
import string
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

DEFAULT_TOTAL = 200  # ghz's default when neither total nor duration is given
DEFAULT_CONCURRENCY = 50  # ghz's default
DEFAULT_TIMEOUT_S = 20.0  # ghz's default
MAX_DURATION_S = 3600.0  # a run never goes on longer than this, whatever it was told

# The keys a ghz (>= 0.80) JSON config may hold; anything else is a typo ghz would ignore.
GHZ_CONFIG_KEYS = frozenset(
    {
        "proto",
        "protoset",
        "call",
        "cacert",
        "cert",
        "key",
        "skipTLS",
        "cname",
        "authority",
        "insecure",
        "total",
        "concurrency",
        "connections",
        "qps",
        "rps",
        "duration",
        "duration-stop",
        "max-duration",
        "timeout",
        "data",
        "data-file",
        "binary-file",
        "metadata",
        "metadata-file",
        "stream-interval",
        "output",
        "format",
        "connect-timeout",
        "keepalive",
        "cpus",
        "import-paths",
        "name",
        "tags",
        "reflect-metadata",
        "debug",
        "host",
        "enable-compression",
        "skipFirst",
        "count-errors",
        "async",
        "lb-strategy",
        "stream-call-duration",
        "stream-call-count",
        "stream-dynamic-messages",
        "load-schedule",
        "load-start",
        "load-end",
        "load-step",
        "load-step-duration",
        "load-max-duration",
        "concurrency-schedule",
        "concurrency-start",
        "concurrency-end",
        "concurrency-step",
        "concurrency-step-duration",
        "concurrency-max-duration",
    }
)


# ---------------------------------------------------------------------------------------------
# ghz config files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GhzConfig:
    """The parts of a ghz config this tool uses; `protoset` is resolved against the config's
    folder (ghz resolves it against the working directory: run ghz from deploy/loadtest)."""

    path: Path
    call: str
    data: Any
    metadata: dict[str, str]
    protoset: Path | None
    host: str
    concurrency: int
    total: int | None
    duration_s: float | None
    rps: float | None
    timeout_s: float
    connections: int
    name: str = ""


def parse_duration(text: str) -> float:
    """Go duration strings as ghz takes them ("500ms", "10s", "1m30s", "2h") -> seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r} (examples: 500ms, 10s, 1m30s)")
    return sum(float(n) * units[u] for n, u in parts)


def load_ghz_config(path: Path) -> GhzConfig:
    raw = json.loads(Path(path).read_text())
    unknown = set(raw) - GHZ_CONFIG_KEYS
    if unknown:
        raise ValueError(f"{path}: keys ghz does not know: {sorted(unknown)}")
    if not raw.get("call"):
        raise ValueError(f"{path}: `call` is required")
    protoset = raw.get("protoset")
    return GhzConfig(
        path=Path(path),
        call=raw["call"],
        data=raw.get("data", {}),
        metadata=dict(raw.get("metadata") or {}),
        protoset=(Path(path).parent / protoset) if protoset else None,
        host=raw.get("host", ""),
        concurrency=int(raw.get("concurrency", DEFAULT_CONCURRENCY)),
        total=int(raw["total"]) if raw.get("total") else None,
        duration_s=parse_duration(raw["duration"]) if raw.get("duration") else None,
        rps=float(raw.get("rps") or raw.get("qps") or 0) or None,
        timeout_s=parse_duration(raw["timeout"]) if raw.get("timeout") else DEFAULT_TIMEOUT_S,
        connections=int(raw.get("connections", 1)),
        name=raw.get("name", ""),
    )


# ---------------------------------------------------------------------------------------------
# ghz call templates: {{.RequestNumber}}, {{.UUID}}, {{randomInt 1 9}}, ...
# ---------------------------------------------------------------------------------------------


class TemplateError(ValueError):
    """A template action this renderer (and so possibly ghz) does not support."""


@dataclass(frozen=True)
class CallTemplateData:
    """ghz's per-call template data (runner/call_template_data.go)."""

    worker_id: str
    request_number: int
    fully_qualified_name: str
    method_name: str
    service_name: str
    input_name: str
    output_name: str
    is_client_streaming: bool
    is_server_streaming: bool
    timestamp: str
    timestamp_unix: int
    timestamp_unix_milli: int
    timestamp_unix_nano: int
    uuid: str

    @classmethod
    def for_call(
        cls,
        method: MethodDescriptor,
        worker_id: str,
        request_number: int,
        now_ns: int | None = None,
        call_uuid: str | None = None,
    ) -> CallTemplateData:
        now_ns = time.time_ns() if now_ns is None else now_ns
        stamp = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
        return cls(
            worker_id=worker_id,
            request_number=request_number,
            fully_qualified_name=method.full_name,
            method_name=method.name,
            service_name=method.containing_service.name,
            input_name=method.input_type.name,
            output_name=method.output_type.name,
            is_client_streaming=method.client_streaming,
            is_server_streaming=method.server_streaming,
            timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            timestamp_unix=now_ns // 10**9,
            timestamp_unix_milli=now_ns // 10**6,
            timestamp_unix_nano=now_ns,
            uuid=call_uuid or str(uuid.uuid4()),
        )

    def field(self, name: str) -> str:
        values = {
            "WorkerID": self.worker_id,
            "RequestNumber": self.request_number,
            "FullyQualifiedName": self.fully_qualified_name,
            "MethodName": self.method_name,
            "ServiceName": self.service_name,
            "InputName": self.input_name,
            "OutputName": self.output_name,
            "IsClientStreaming": self.is_client_streaming,
            "IsServerStreaming": self.is_server_streaming,
            "Timestamp": self.timestamp,
            "TimestampUnix": self.timestamp_unix,
            "TimestampUnixMilli": self.timestamp_unix_milli,
            "TimestampUnixNano": self.timestamp_unix_nano,
            "UUID": self.uuid,
        }
        if name not in values:
            raise TemplateError(f"unknown template field .{name}")
        value = values[name]
        return str(value).lower() if isinstance(value, bool) else str(value)


_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_RANDOM_CHARS = string.ascii_letters + string.digits


def _template_function(name: str, args: list[str], rng: random.Random) -> str:
    """ghz's own functions: newUUID, randomString n, randomInt min max ([min, max))."""
    if name == "newUUID" and not args:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if name == "randomString" and len(args) == 1:
        length = int(args[0])
        if length <= 0:
            length = rng.randint(2, 16)
        return "".join(rng.choice(_RANDOM_CHARS) for _ in range(length))
    if name == "randomInt" and len(args) == 2:
        low, high = int(args[0]), int(args[1])
        if high <= low:
            raise TemplateError(f"randomInt {low} {high}: max must be > min")
        return str(rng.randrange(low, high))
    raise TemplateError(f"unsupported template action {' '.join([name, *args])!r}")


def render_template(text: str, data: CallTemplateData, rng: random.Random) -> str:
    """Renders the template actions in one string the way ghz does for its call data."""

    def action(match: re.Match[str]) -> str:
        words = match.group(1).split()
        if not words:
            raise TemplateError(f"empty template action in {text!r}")
        if words[0].startswith(".") and len(words) == 1:
            return data.field(words[0][1:])
        return _template_function(words[0], words[1:], rng)

    return _ACTION.sub(action, text)


def has_templates(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(has_templates(k) or has_templates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False


def render_value(value: Any, data: CallTemplateData, rng: random.Random) -> Any:
    """Renders every string inside a JSON value (keys included)."""
    if isinstance(value, str):
        return render_template(value, data, rng)
    if isinstance(value, Mapping):
        return {render_template(k, data, rng): render_value(v, data, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, data, rng) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Descriptors: from the protoset, or from the generated stubs when there is none
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RpcMethod:
    """One unary method with its message classes, ready for a generic call."""

    descriptor: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]

    @property
    def path(self) -> str:
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    @property
    def service(self) -> str:
        return self.descriptor.containing_service.full_name

    def request_from_json(self, value: Any) -> Message:
        return json_format.ParseDict(value, self.request_class())


def load_protoset(path: Path) -> descriptor_pool.DescriptorPool:
    """A fresh pool with every file of a `protoc --include_imports` descriptor set."""
    file_set = descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    return pool


def stub_pool() -> descriptor_pool.DescriptorPool:
    """The default pool, filled by importing the generated copyloop.v1 modules."""
    import importlib

    for name in ("common", "profile", "generation", "prediction", "fusion"):
        importlib.import_module(f"copyloop.v1.{name}_pb2")
    return descriptor_pool.Default()


def resolve_method(pool: descriptor_pool.DescriptorPool, call: str) -> RpcMethod:
    """`pkg.Service/Method` or `pkg.Service.Method` (both ghz spellings)."""
    service_name, sep, method_name = call.partition("/")
    if not sep:
        service_name, _, method_name = call.rpartition(".")
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        raise LookupError(f"service {service_name!r} is not in the descriptors") from None
    method = service.methods_by_name.get(method_name)
    if method is None:
        raise LookupError(f"{service_name} has no method {method_name!r}")
    if method.client_streaming or method.server_streaming:
        raise LookupError(f"{call} is a streaming method; only unary calls are supported")
    return RpcMethod(
        method,
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )


def method_for_config(config: GhzConfig, protoset: Path | None = None) -> RpcMethod:
    path = protoset or config.protoset
    pool = load_protoset(path) if path and path.exists() else stub_pool()
    return resolve_method(pool, config.call)


# ---------------------------------------------------------------------------------------------
# Requests per call
# ---------------------------------------------------------------------------------------------


@dataclass
class RequestFactory:
    """Builds each call's request and metadata from the config, rendering templates per call
    (and only once when the config has none)."""

    method: RpcMethod
    data: Any
    metadata: Mapping[str, str]
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._templated = has_templates(self.data) or has_templates(dict(self.metadata))
        self._fixed: tuple[Message, tuple[tuple[str, str], ...]] | None = None

    def build(
        self, worker_id: str, request_number: int
    ) -> tuple[Message, tuple[tuple[str, str], ...]]:
        if not self._templated and self._fixed is not None:
            return self._fixed
        call_data = CallTemplateData.for_call(self.method.descriptor, worker_id, request_number)
        data = render_value(self.data, call_data, self.rng)
        metadata = render_value(dict(self.metadata), call_data, self.rng)
        built = (
            self.method.request_from_json(data),
            tuple((k.lower(), v) for k, v in metadata.items()),
        )
        if not self._templated:
            self._fixed = built
        return built


# ---------------------------------------------------------------------------------------------
# Driving the server
# ---------------------------------------------------------------------------------------------


def ensure_loopback(host: str) -> None:
    """Refuses any target that resolves to a non-loopback address."""
    name, _, port = host.rpartition(":")
    name = name.strip("[]")
    if not name or not port.isdigit():
        raise ValueError(f"expected host:port, got {host!r}")
    addresses = {
        info[4][0] for info in socket.getaddrinfo(name, int(port), proto=socket.IPPROTO_TCP)
    }
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if outside:
        raise ValueError(
            f"{host} resolves to non-loopback {outside}; this tool only drives local servers"
        )


@dataclass(frozen=True)
class CallResult:
    latency_s: float
    code: grpc.StatusCode
    error: str = ""


@dataclass(frozen=True)
class LoadPlan:
    """How much load: `concurrency` callers, stopping at `total` calls or after `duration_s`
    (whichever comes first), optionally paced to `rps` calls per second in all."""

    concurrency: int
    total: int | None
    duration_s: float | None
    rps: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    connections: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.connections < 1:
            raise ValueError("concurrency and connections must be >= 1")
        if self.connections > self.concurrency:
            raise ValueError("connections cannot exceed concurrency")
        if self.total is None and self.duration_s is None:
            raise ValueError("a run needs a total or a duration")
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:.0f}] s")


async def call_once(
    channel: grpc.aio.Channel,
    method: RpcMethod,
    request: Message,
    metadata: Sequence[tuple[str, str]],
    timeout_s: float,
) -> Message:
    """One generic unary call (no generated stub needed)."""
    rpc = channel.unary_unary(
        method.path,
        request_serializer=method.request_class.SerializeToString,
        response_deserializer=method.response_class.FromString,
    )
    return await rpc(request, metadata=tuple(metadata), timeout=timeout_s)


async def run_load(
    target: str,
    method: RpcMethod,
    requests: RequestFactory,
    plan: LoadPlan,
) -> tuple[list[CallResult], float]:
    """Runs the plan; returns every call's result and the wall time of the whole run."""
    ensure_loopback(target)
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(plan.connections)
    ]
    results: list[CallResult] = []
    issued = 0
    started = time.perf_counter()
    deadline = started + plan.duration_s if plan.duration_s else math.inf

    def next_request_number() -> int | None:
        nonlocal issued
        if plan.total is not None and issued >= plan.total:
            return None
        if time.perf_counter() >= deadline:
            return None
        issued += 1
        return issued - 1

    async def worker(index: int) -> None:
        channel = channels[index % len(channels)]
        worker_id = f"w{index}"
        while (number := next_request_number()) is not None:
            if plan.rps:
                # Call n is due at start + n / rps, shared by all workers (open-loop pacing).
                delay = started + number / plan.rps - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.perf_counter() >= deadline:
                    return
            request, metadata = requests.build(worker_id, number)
            t0 = time.perf_counter()
            try:
                await call_once(channel, method, request, metadata, plan.timeout_s)
                results.append(CallResult(time.perf_counter() - t0, grpc.StatusCode.OK))
            except grpc.aio.AioRpcError as err:
                results.append(
                    CallResult(time.perf_counter() - t0, err.code(), err.details() or "")
                )

    try:
        await asyncio.wait_for(channels[0].channel_ready(), timeout=10)
        await asyncio.gather(*(worker(i) for i in range(plan.concurrency)))
    finally:
        elapsed = time.perf_counter() - started
        for channel in channels:
            await channel.close()
    return results, elapsed


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

PERCENTILES = (10, 25, 50, 75, 90, 95, 99)


@dataclass(frozen=True)
class Summary:
    count: int
    total_s: float
    rps: float
    average_s: float
    fastest_s: float
    slowest_s: float
    percentiles_s: dict[int, float]
    status_counts: dict[str, int]
    errors: dict[str, int]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def status_name(code: grpc.StatusCode) -> str:
    """ghz prints Go's names: DEADLINE_EXCEEDED -> DeadlineExceeded."""
    return (
        "OK"
        if code == grpc.StatusCode.OK
        else "".join(w.capitalize() for w in code.name.split("_"))
    )


def summarize(results: Sequence[CallResult], elapsed_s: float) -> Summary:
    latencies = sorted(r.latency_s for r in results)
    return Summary(
        count=len(results),
        total_s=elapsed_s,
        rps=len(results) / elapsed_s if elapsed_s > 0 else math.nan,
        average_s=sum(latencies) / len(latencies) if latencies else math.nan,
        fastest_s=latencies[0] if latencies else math.nan,
        slowest_s=latencies[-1] if latencies else math.nan,
        percentiles_s={p: percentile(latencies, p) for p in PERCENTILES},
        status_counts=dict(Counter(status_name(r.code) for r in results).most_common()),
        errors=dict(
            Counter(
                f"{status_name(r.code)}: {r.error}" for r in results if r.code != grpc.StatusCode.OK
            ).most_common(10)
        ),
    )


def format_summary(summary: Summary, title: str = "") -> str:
    ms = 1000.0
    lines = [f"Summary:{'  ' + title if title else ''}"]
    lines += [
        f"  Count:\t{summary.count}",
        f"  Total:\t{summary.total_s:.2f} s",
        f"  Slowest:\t{summary.slowest_s * ms:.2f} ms",
        f"  Fastest:\t{summary.fastest_s * ms:.2f} ms",
        f"  Average:\t{summary.average_s * ms:.2f} ms",
        f"  Requests/sec:\t{summary.rps:.2f}",
        "",
        "Latency distribution:",
    ]
    lines += [f"  {p} % in {v * ms:.2f} ms" for p, v in summary.percentiles_s.items()]
    lines += ["", "Status code distribution:"]
    lines += [f"  [{name}]\t{n} responses" for name, n in summary.status_counts.items()]
    if summary.errors:
        lines += ["", "Error distribution:"]
        lines += [f"  [{n}]\t{text}" for text, n in summary.errors.items()]
    return "\n".join(lines)


def summary_json(summary: Summary) -> str:
    return json.dumps(
        {
            "count": summary.count,
            "total_ms": summary.total_s * 1e3,
            "rps": summary.rps,
            "average_ms": summary.average_s * 1e3,
            "fastest_ms": summary.fastest_s * 1e3,
            "slowest_ms": summary.slowest_s * 1e3,
            "latency_ms": {f"p{p}": v * 1e3 for p, v in summary.percentiles_s.items()},
            "status_codes": summary.status_counts,
            "errors": summary.errors,
        },
        indent=2,
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/load.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="a ghz JSON config (deploy/loadtest/*.json)")
    parser.add_argument("--host", help="host:port on loopback; default: the config's host")
    parser.add_argument(
        "--concurrency", "-c", type=int, help="concurrent callers (default: config, else 50)"
    )
    parser.add_argument("--total", "-n", type=int, help="stop after this many calls")
    parser.add_argument(
        "--duration", "-z", type=parse_duration, help="stop after this long, e.g. 10s"
    )
    parser.add_argument("--rps", type=float, help="pace to this many calls per second in all")
    parser.add_argument(
        "--timeout", type=parse_duration, help="per-call deadline (default: config, else 20s)"
    )
    parser.add_argument("--connections", type=int, help="gRPC channels shared by the callers")
    parser.add_argument("--protoset", type=Path, help="descriptor set (default: the config's)")
    parser.add_argument("--seed", type=int, default=None, help="seed for randomInt/randomString")
    parser.add_argument("--format", choices=["summary", "json"], default="summary")
    return parser.parse_args(argv)


def plan_from(config: GhzConfig, args: argparse.Namespace) -> LoadPlan:
    """CLI flags override the file, as with ghz; a duration given on the command line drops the
    file's total (ghz's -z semantics) unless --total is given too."""
    total = args.total if args.total is not None else config.total
    duration = args.duration if args.duration is not None else config.duration_s
    if args.duration is not None and args.total is None:
        total = None
    if total is None and duration is None:
        total = DEFAULT_TOTAL
    return LoadPlan(
        concurrency=args.concurrency or config.concurrency,
        total=total,
        duration_s=duration,
        rps=args.rps if args.rps is not None else config.rps,
        timeout_s=args.timeout or config.timeout_s,
        connections=args.connections or config.connections,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    config = load_ghz_config(args.config)
    target = args.host or config.host
    try:
        if not target:
            raise ValueError("no host: give --host or set `host` in the config")
        ensure_loopback(target)
        plan = plan_from(config, args)
    except ValueError as err:
        print(f"bench/load.py: {err}", file=sys.stderr)
        return 2
    if not (args.protoset or config.protoset or Path()).exists():
        print(
            "no protoset (deploy/loadtest/build_protoset.sh builds it); using copyloop.v1 stubs",
            file=sys.stderr,
        )
    method = method_for_config(config, args.protoset)
    requests = RequestFactory(method, config.data, config.metadata, random.Random(args.seed))
    requests.build("check", 0)  # a config whose data does not parse fails before any load
    results, elapsed = asyncio.run(run_load(target, method, requests, plan))
    summary = summarize(results, elapsed)
    title = f"{config.call} @ {target}, concurrency {plan.concurrency}" + (
        f", {plan.rps:g} rps" if plan.rps else ""
    )
    print(summary_json(summary) if args.format == "json" else format_summary(summary, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "CallResult",
    "CallTemplateData",
    "GhzConfig",
    "LoadPlan",
    "RequestFactory",
    "RpcMethod",
    "Summary",
    "TemplateError",
    "call_once",
    "ensure_loopback",
    "format_summary",
    "load_ghz_config",
    "load_protoset",
    "method_for_config",
    "parse_duration",
    "percentile",
    "render_template",
    "render_value",
    "resolve_method",
    "run_load",
    "status_name",
    "stub_pool",
    "summarize",
]
