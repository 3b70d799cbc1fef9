"""What every command shares: the global options, a lazily built client, and the rule that a
failure prints one line and exits non-zero, never a traceback."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from copyloop_client.client import Copyloop
from copyloop_client.config import ClientConfig, ConfigError
from copyloop_client.convert import InputError
from copyloop_client.errors import CopyloopError, UnavailableError
from copyloop_client.platform_control import PlatformError

__all__ = ["CliState", "cli_errors", "console", "fail", "state"]

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "COPYLOOP_DEBUG"  # set to 1 to see tracebacks while developing the CLI


@dataclass
class CliState:
    config_file: Path | None = None
    api_key: str | None = None
    addresses: dict[str, str | None] = field(default_factory=dict)
    timeout_s: float | None = None
    var_dir: Path = Path("var")
    _client: Copyloop | None = None

    def config(self) -> ClientConfig:
        base = ClientConfig.load(self.config_file, platform_file=self.var_dir / "platform.json")
        return base.with_overrides(
            addresses=self.addresses, api_key=self.api_key, timeout_s=self.timeout_s
        )

    def client(self) -> Copyloop:
        if self._client is None:
            self._client = Copyloop(self.config())
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_object(CliState)
    if obj is None:  # a command invoked without the root callback (tests of one command)
        obj = ctx.ensure_object(CliState)
    return obj


def console() -> Console:
    """Built per call so it writes to the sys.stdout of the moment (CliRunner swaps it)."""
    return Console(highlight=False, soft_wrap=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def cli_errors(command: F) -> F:
    """Turns every expected failure into `error: <one line>` on stderr and exit code 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except UnavailableError as exc:
            raise fail(f"{exc} (is the platform running? `copyloop platform status`)") from None
        except (CopyloopError, ConfigError, InputError, PlatformError) as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            print_type = type(exc).__name__
            raise fail(
                f"unexpected {print_type}: {exc} (set {DEBUG_ENV}=1 for the traceback)"
            ) from None

    return run  # type: ignore[return-value]
