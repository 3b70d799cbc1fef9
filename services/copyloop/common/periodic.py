"""The loop every background job of a service shares (retention, auto-retraining): wait the
interval, run one step, log a failed step and carry on (the next step catches up), until
stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any


class Periodic:
    def __init__(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], Awaitable[Any]],
        log: logging.Logger,
        failure: str,
        log_extra: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._step = step
        self._log = log
        self._failure = failure
        self._log_extra = log_extra
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self._step()
            except Exception:
                self._log.warning(self._failure, exc_info=True, extra=self._log_extra)
