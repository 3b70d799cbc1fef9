"""Settings from environment variables, validated once at start-up.

Each service subclasses `ServiceSettings` with its own prefix (e.g. `COPYLOOP_PROFILE_`);
the API keys are shared by all services (`COPYLOOP_API_KEYS`).
"""

from __future__ import annotations

import sys
from typing import Self, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_KEYS = "demo-key:demo"


class ServiceSettings(BaseSettings):
    """Settings every service has. Environment variables override the documented defaults."""

    model_config = SettingsConfigDict(env_prefix="COPYLOOP_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    metrics_port: int = Field(
        -1, ge=-1, le=65535, description="Prometheus HTTP port; 0 = free port, -1 = off."
    )
    api_keys: str = Field(
        DEFAULT_API_KEYS,
        validation_alias="COPYLOOP_API_KEYS",
        description="Comma-separated `key:tenant` pairs; the key goes in `authorization: Bearer`.",
    )
    log_level: str = Field("INFO", validation_alias="COPYLOOP_LOG_LEVEL")
    shutdown_grace_s: float = Field(
        10.0, gt=0, le=300, description="On SIGTERM, in-flight calls get this long to finish."
    )
    readiness_interval_s: float = Field(
        2.0, gt=0, le=60, description="How often dependencies are re-checked for health."
    )
    # Retention of the serve log (fusion) and the training log (prediction); shared by all
    # services, like the API keys. The other services keep no such logs and ignore them.
    retention_days: float = Field(
        30.0,
        ge=0,
        le=3650,
        validation_alias="COPYLOOP_RETENTION_DAYS",
        description="Log rows older than this many days are pruned; 0 keeps them forever.",
    )
    retention_interval_s: float = Field(
        600.0,
        ge=1,
        le=86_400,
        validation_alias="COPYLOOP_RETENTION_INTERVAL_S",
        description="Seconds between pruning runs (the first one this long after start).",
    )
    retention_batch_size: int = Field(
        1000,
        ge=1,
        le=10_000,
        validation_alias="COPYLOOP_RETENTION_BATCH_SIZE",
        description="Rows deleted per transaction while pruning.",
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_parse(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level_known(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper

    def tenant_keys(self) -> dict[str, str]:
        return parse_api_keys(self.api_keys)

    @classmethod
    def from_env(cls, **overrides: object) -> Self:
        """Loads and validates; a bad value exits with one clear line per problem."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(format_settings_error(cls, exc)) from None


class SettingsError(Exception):
    """Raised when the environment holds an invalid setting."""


def parse_api_keys(value: str) -> dict[str, str]:
    """`k1:tenantA,k2:tenantB` -> {k1: tenantA, k2: tenantB}."""
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        key, sep, tenant = pair.partition(":")
        if not sep or not key.strip() or not tenant.strip():
            raise ValueError(f"expected key:tenant pairs, got {pair!r}")
        keys[key.strip()] = tenant.strip()
    if not keys:
        raise ValueError("at least one key:tenant pair is needed")
    return keys


def format_settings_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    prefix = cls.model_config.get("env_prefix", "")
    lines = [f"invalid configuration for {cls.__name__}:"]
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        env = name if name.startswith("COPYLOOP_") else f"{prefix}{name}".upper()
        lines.append(f"  {env}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


S = TypeVar("S", bound=ServiceSettings)


def load_or_exit(cls: type[S]) -> S:
    """For `main()`s: print the problem and exit 2 rather than a traceback."""
    try:
        return cls.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
