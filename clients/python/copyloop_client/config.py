"""Client configuration: where the four services are, which API key to send, how long to wait and
how to retry — merged from the local platform's var/platform.json, a config file, environment
variables and explicit overrides, in that order (later wins), so a script, a CI job and a
developer's shell can each point the same code somewhere else without editing it."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_ADDRESS_VARS",
    "SERVICES",
    "ClientConfig",
    "ConfigError",
    "RetryPolicy",
    "default_platform_file",
]

SERVICES: tuple[str, ...] = ("profile", "generation", "prediction", "fusion")
ENV_ADDRESS_VARS: dict[str, str] = {s: f"COPYLOOP_{s.upper()}_ADDR" for s in SERVICES}
ENV_API_KEY = "COPYLOOP_API_KEY"
ENV_TIMEOUT = "COPYLOOP_TIMEOUT_S"
ENV_VAR_DIR = "COPYLOOP_VAR_DIR"
# The main job's ports (profile first); used only when nothing else names an address.
DEFAULT_ADDRESSES: dict[str, str] = {s: f"127.0.0.1:{50051 + n}" for n, s in enumerate(SERVICES)}
DEFAULT_API_KEY = "demo-key"


class ConfigError(ValueError):
    """A configuration source is unreadable or holds a bad value; the message names both."""


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's own retry policy (see `channel.service_config`): only UNAVAILABLE is retried,
    with exponential backoff, because that code means the call never reached the service's
    logic; every other failure is a real answer and is raised at once."""

    max_attempts: int = 4  # first try included; gRPC caps this at 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.max_attempts <= 5:
            problems.append("retry.max_attempts must be between 1 and 5 (gRPC's cap)")
        if not self.initial_backoff_s > 0:
            problems.append("retry.initial_backoff_s must be > 0")
        if not self.max_backoff_s >= self.initial_backoff_s:
            problems.append("retry.max_backoff_s must be >= retry.initial_backoff_s")
        if not self.backoff_multiplier >= 1:
            problems.append("retry.backoff_multiplier must be >= 1")
        if problems:
            raise ConfigError("; ".join(problems))


# Keys the main job writes to var/platform.json for other readers than the client config
# (platform_control reads the pid, `copyloop copywriter cycle` the Triton URL and model dir).
PLATFORM_ONLY_KEYS = frozenset({"pid", "triton_url", "model_dir"})


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to reach the platform."""

    addresses: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ADDRESSES))
    api_key: str = DEFAULT_API_KEY
    timeout_s: float = 10.0  # default deadline of every call; a call may pass its own
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        unknown = set(self.addresses) - set(SERVICES)
        if unknown:
            raise ConfigError(f"unknown service(s) in addresses: {', '.join(sorted(unknown))}")
        missing = [s for s in SERVICES if not self.addresses.get(s)]
        if missing:
            raise ConfigError(f"no address for: {', '.join(missing)}")
        if not self.timeout_s > 0:
            raise ConfigError("timeout_s must be > 0")

    def address(self, service: str) -> str:
        return self.addresses[service]

    def with_overrides(
        self,
        *,
        addresses: Mapping[str, str | None] | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> ClientConfig:
        """A copy with the given values replaced; None means 'keep' (CLI flags not given)."""
        merged = dict(self.addresses)
        merged.update({s: a for s, a in (addresses or {}).items() if a})
        return replace(
            self,
            addresses=merged,
            api_key=api_key or self.api_key,
            timeout_s=timeout_s if timeout_s is not None else self.timeout_s,
            retry=retry or self.retry,
        )

    # ----------------------------------------------------------------------------- sources

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: ClientConfig | None = None, source: str = "config"
    ) -> ClientConfig:
        """Applies a parsed file's keys on top of `base`. Keys: addresses {service: host:port},
        api_key, timeout_s, retry {max_attempts, initial_backoff_s, max_backoff_s,
        backoff_multiplier}. What only a platform.json holds (PLATFORM_ONLY_KEYS: its pid, and
        the Triton address and model the copywriter cycle reads) is accepted and ignored."""
        base = base or cls()
        allowed = {"addresses", "api_key", "timeout_s", "retry"}
        unknown = set(data) - allowed - PLATFORM_ONLY_KEYS
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        try:
            addresses = data.get("addresses") or {}
            if not isinstance(addresses, Mapping):
                raise ConfigError("addresses must be a table/object of service -> host:port")
            retry = base.retry
            if "retry" in data:
                raw = data["retry"]
                if not isinstance(raw, Mapping):
                    raise ConfigError("retry must be a table/object")
                known = {f.name for f in fields(RetryPolicy)}
                bad = set(raw) - known
                if bad:
                    raise ConfigError(f"unknown retry key(s) {', '.join(sorted(bad))}")
                values: dict[str, Any] = {k: _number(f"retry.{k}", v) for k, v in raw.items()}
                if "max_attempts" in values:
                    if not float(values["max_attempts"]).is_integer():
                        raise ConfigError("retry.max_attempts must be a whole number")
                    values["max_attempts"] = int(values["max_attempts"])
                retry = replace(retry, **values)
            timeout = _number("timeout_s", data["timeout_s"]) if "timeout_s" in data else None
            api_key = data.get("api_key")
            if api_key is not None and not isinstance(api_key, str):
                raise ConfigError("api_key must be a string")
            return base.with_overrides(
                addresses={str(k): str(v) for k, v in addresses.items()},
                api_key=api_key,
                timeout_s=timeout,
                retry=retry,
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path, base: ClientConfig | None = None) -> ClientConfig:
        """JSON (`.json`) or TOML (any other suffix, parsed with tomllib)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
            ) from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: the top level must be an object/table")
        return cls.from_mapping(data, base, source=str(path))

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, base: ClientConfig | None = None
    ) -> ClientConfig:
        """COPYLOOP_{PROFILE,GENERATION,PREDICTION,FUSION}_ADDR, COPYLOOP_API_KEY,
        COPYLOOP_TIMEOUT_S; unset or empty variables leave `base` as it is."""
        env = os.environ if env is None else env
        base = base or cls()
        timeout = None
        if env.get(ENV_TIMEOUT):
            try:
                timeout = float(env[ENV_TIMEOUT])
            except ValueError:
                raise ConfigError(f"{ENV_TIMEOUT}={env[ENV_TIMEOUT]!r} is not a number") from None
        return base.with_overrides(
            addresses={s: env.get(var) for s, var in ENV_ADDRESS_VARS.items()},
            api_key=env.get(ENV_API_KEY) or None,
            timeout_s=timeout,
        )

    @classmethod
    def from_platform_file(cls, path: str | Path, base: ClientConfig | None = None) -> ClientConfig:
        """The file `python -m copyloop.main --serve-only` writes while it serves."""
        return cls.from_file(path, base)

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        platform_file: str | Path | None = None,
    ) -> ClientConfig:
        """defaults < platform.json (when present) < config file < environment. Explicit values
        (CLI flags, code) go on top with `with_overrides`."""
        env = os.environ if env is None else env
        config = cls()
        platform = Path(platform_file) if platform_file else default_platform_file(env)
        if platform.is_file():
            config = cls.from_platform_file(platform, config)
        if config_file:
            config = cls.from_file(config_file, config)
        return cls.from_env(env, config)


def default_platform_file(env: Mapping[str, str] | None = None) -> Path:
    """var/platform.json under COPYLOOP_VAR_DIR (default ./var), as the main job writes it."""
    env = os.environ if env is None else env
    return Path(env.get(ENV_VAR_DIR) or "var") / "platform.json"


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)
