"""Asyncio client for the copywriter LLM served by Triton (tritonclient.grpc.aio only).

Speaks the vLLM-backend tensor contract (text_input, stream, sampling_parameters,
exclude_input_in_output, return_* -> text_output, finish_reason, cumulative_logprob,
num_output_tokens), so the same client drives our Python-backend model, Triton's vLLM
backend or a TensorRT-LLM model. It reads the model config once to learn the input shape
(max_batch_size > 0: [1, 1]; vLLM-style max_batch_size 0: [1]) and which optional inputs the
model has, and always uses the gRPC streaming API, which decoupled models require.

Errors are mapped to three kinds callers can act on: `LLMUnavailableError` (server or model
down: retry elsewhere / fall back), `LLMBadRequestError` (our request is wrong: do not retry),
`LLMTimeoutError` (deadline passed); anything else is `LLMServerError`. A request may name a
model version (Triton's per-request `model_version`; empty = the newest loaded); one Triton
does not serve is `LLMVersionNotFoundError`, and every output says which version wrote it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput
from tritonclient.utils import InferenceServerException

__all__ = [
    "LLMBadRequestError",
    "LLMError",
    "LLMOutput",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "LLMVersionNotFoundError",
    "SamplingParams",
    "TritonLLMClient",
]

# Our model prefixes per-request validation errors with this (stream errors carry no code).
_BAD_REQUEST_MARKERS = (
    "bad request:",
    "unexpected inference input",
    "expected ",
    "invalid argument",
    "unable to parse",
)
_UNAVAILABLE_MARKERS = (
    "is not ready",
    "unknown model",
    "not found",
    "failed to connect",
    "connection refused",
    "unavailable",
    "socket closed",
)


class LLMError(Exception):
    """Base class of every error this client raises."""


class LLMUnavailableError(LLMError):
    """The server or the model cannot be reached or is not ready."""


class LLMBadRequestError(LLMError):
    """The request was rejected (bad prompt or sampling parameters); retrying won't help."""


class LLMTimeoutError(LLMError):
    """The call's deadline passed before the model finished."""


class LLMServerError(LLMError):
    """The model failed while serving a valid request."""


class LLMVersionNotFoundError(LLMError):
    """The server is up but does not serve the requested model version (never published, not
    loaded, or of another weights lineage); `loaded` lists the versions it does serve."""

    def __init__(self, message: str, version: str, loaded: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.version = version
        self.loaded = loaded


@dataclass(frozen=True)
class SamplingParams:
    """vLLM-style sampling parameters, sent as the sampling_parameters JSON.

    temperature 0 is greedy; top_k 0 and top_p 1 disable those filters; a seed makes
    sampling reproducible; ignore_eos keeps generating to max_tokens (benchmarks);
    presence/frequency penalties discourage repeating generated tokens (small models loop).
    """

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    seed: int | None = None
    max_tokens: int = 64
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def to_json(self) -> str:
        """Only non-default extras are sent, so a plain vLLM backend reads it unchanged."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        for optional, default in (
            ("ignore_eos", False),
            ("presence_penalty", 0.0),
            ("frequency_penalty", 0.0),
        ):
            if data[optional] == default:
                data.pop(optional)
        return json.dumps(data)


@dataclass(frozen=True)
class LLMOutput:
    text: str
    finish_reason: str
    cumulative_logprob: float | None
    num_output_tokens: int
    latency_s: float
    model_version: str = ""  # the version Triton says answered ("" when it did not say)


@dataclass(frozen=True)
class _ModelShape:
    input_shape: tuple[int, ...]
    input_names: frozenset[str]


def _status_of(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return str(error.code())
    if isinstance(error, InferenceServerException):
        return str(error.status() or "")
    return ""


def _map_error(error: BaseException, context: str) -> LLMError:
    """Map a gRPC / Triton error to the client's error kinds."""
    status = _status_of(error)
    message = (
        error.details()
        if isinstance(error, grpc.RpcError) and hasattr(error, "details")
        else str(error)
    ) or str(error)
    text = f"{context}: {message}"
    lowered = message.lower()
    if "DEADLINE_EXCEEDED" in status or "deadline exceeded" in lowered:
        return LLMTimeoutError(text)
    if "UNAVAILABLE" in status or "UNIMPLEMENTED" in status:
        return LLMUnavailableError(text)
    if "INVALID_ARGUMENT" in status or any(m in lowered for m in _BAD_REQUEST_MARKERS):
        return LLMBadRequestError(text)
    if "NOT_FOUND" in status or any(m in lowered for m in _UNAVAILABLE_MARKERS):
        return LLMUnavailableError(text)
    return LLMServerError(text)


def _sampling_json(sampling: SamplingParams | Mapping[str, Any] | str | None) -> str | None:
    if sampling is None:
        return None
    if isinstance(sampling, SamplingParams):
        return sampling.to_json()
    if isinstance(sampling, str):
        return sampling  # passed through verbatim: the server validates it
    return json.dumps(dict(sampling))


class TritonLLMClient:
    """Generate copy through Triton's gRPC streaming API.

    One client per process is enough: calls are concurrent, and Triton's dynamic batcher
    merges concurrent requests into one model execution.
    """

    def __init__(
        self,
        url: str,
        model_name: str = "copywriter",
        *,
        default_timeout_s: float | None = 60.0,
        verbose: bool = False,
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.default_timeout_s = default_timeout_s
        self.verbose = verbose
        self._client: triton_aio.InferenceServerClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shape: _ModelShape | None = None

    # ---- connection -----------------------------------------------------------------
    def _connection(self) -> triton_aio.InferenceServerClient:
        """The aio client, bound to the running loop (recreated if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = triton_aio.InferenceServerClient(self.url, verbose=self.verbose)
            self._loop = loop
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> TritonLLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def is_ready(self, timeout_s: float = 5.0) -> bool:
        """True when the server is up and the model is loaded and ready."""
        client = self._connection()
        try:
            return bool(await client.is_server_ready(client_timeout=timeout_s)) and bool(
                await client.is_model_ready(self.model_name, client_timeout=timeout_s)
            )
        except (TimeoutError, InferenceServerException, grpc.RpcError, OSError):
            return False

    async def loaded_versions(self, timeout_s: float = 5.0) -> tuple[str, ...]:
        """The versions of the model the server has READY, ascending (the repository index)."""
        client = self._connection()
        try:
            index = await client.get_model_repository_index(as_json=True, client_timeout=timeout_s)
        except (InferenceServerException, grpc.RpcError) as exc:
            raise _map_error(exc, "model repository index") from exc
        versions = {
            str(m.get("version", ""))
            for m in index.get("models", [])
            if m.get("name") == self.model_name and m.get("state") == "READY"
        }
        return tuple(sorted(versions, key=lambda v: (len(v), v)))

    async def check_version(self, version: str, timeout_s: float = 5.0) -> None:
        """Raises LLMVersionNotFoundError when the server is up and does not serve `version`
        ("" = the newest: always fine); LLMUnavailableError etc. when it cannot be asked."""
        if not version:
            return
        loaded = await self.loaded_versions(timeout_s)
        if version not in loaded:
            raise LLMVersionNotFoundError(
                f"{self.model_name} version {version} is not loaded", version, loaded
            )

    async def _version_error(self, version: str, error: LLMError) -> LLMError:
        """A failed request that named a version: LLMVersionNotFoundError when the server is
        up and lacks it (its error text alone cannot tell an unloaded version from an
        unloaded model), else the error as it was."""
        if not version or isinstance(error, LLMTimeoutError | LLMBadRequestError):
            return error
        try:
            loaded = await self.loaded_versions(timeout_s=2.0)
        except LLMError:
            return error
        if version in loaded:
            return error
        return LLMVersionNotFoundError(
            f"{self.model_name} version {version} is not loaded (loaded: "
            f"{', '.join(loaded) or 'none'}): {error}",
            version,
            loaded,
        )

    async def _model_shape(self, timeout_s: float | None) -> _ModelShape:
        if self._shape is None:
            client = self._connection()
            try:
                response = await client.get_model_config(
                    self.model_name, as_json=True, client_timeout=timeout_s
                )
            except (InferenceServerException, grpc.RpcError) as exc:
                raise _map_error(exc, f"model config of {self.model_name!r}") from exc
            config = response.get("config", response)
            batched = int(config.get("max_batch_size", 0)) > 0
            names = frozenset(item["name"] for item in config.get("input", []))
            self._shape = _ModelShape((1, 1) if batched else (1,), names)
        return self._shape

    # ---- requests -------------------------------------------------------------------
    def _inputs(
        self, shape: _ModelShape, prompt: str, sampling: str | None, stream: bool
    ) -> list[InferInput]:
        def tensor(name: str, datatype: str, value: object) -> InferInput | None:
            if name != "text_input" and name not in shape.input_names:
                return None  # e.g. an older vLLM backend without return_* inputs
            dtype = np.object_ if datatype == "BYTES" else np.bool_
            infer_input = InferInput(name, list(shape.input_shape), datatype)
            infer_input.set_data_from_numpy(np.array(value, dtype=dtype).reshape(shape.input_shape))
            return infer_input

        candidates = [
            tensor("text_input", "BYTES", prompt.encode("utf-8")),
            tensor("stream", "BOOL", stream),
            tensor("exclude_input_in_output", "BOOL", True),
            tensor("return_finish_reason", "BOOL", True),
            tensor("return_cumulative_logprob", "BOOL", True),
            tensor("return_num_output_tokens", "BOOL", True),
        ]
        if sampling is not None:
            candidates.append(tensor("sampling_parameters", "BYTES", sampling.encode("utf-8")))
        return [c for c in candidates if c is not None]

    async def _responses(
        self,
        prompt: str,
        sampling: str | None,
        stream: bool,
        timeout_s: float | None,
        model_version: str = "",
    ) -> AsyncIterator[Any]:
        """Send one request on a fresh gRPC stream and yield its InferResults until the last.

        The request side is half-closed after sending; Triton ends the stream once the
        decoupled model has sent its final response.
        """
        shape = await self._model_shape(timeout_s)
        request = {
            "model_name": self.model_name,
            "model_version": model_version,
            "inputs": self._inputs(shape, prompt, sampling, stream),
            "request_id": uuid.uuid4().hex,
        }

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield request

        call = self._connection().stream_infer(requests(), stream_timeout=timeout_s)
        try:
            async for result, error in call:
                if error is not None:
                    raise await self._version_error(
                        model_version, _map_error(error, f"{self.model_name} request")
                    )
                yield result
        except (grpc.RpcError, InferenceServerException) as exc:
            mapped = _map_error(exc, f"{self.model_name} stream")
            raise await self._version_error(model_version, mapped) from exc
        finally:
            call.cancel()

    def _timeout(self, timeout_s: float | None) -> float | None:
        return self.default_timeout_s if timeout_s is None else timeout_s

    async def generate(
        self,
        prompt: str,
        sampling: SamplingParams | Mapping[str, Any] | str | None = None,
        *,
        timeout_s: float | None = None,
        model_version: str = "",
    ) -> LLMOutput:
        """Generate one completion (the prompt is not echoed back) with `model_version` ("" =
        the newest loaded); the output names the version that wrote it."""
        timeout = self._timeout(timeout_s)
        started = time.perf_counter()
        pieces: list[str] = []
        finish_reason, logprob, n_tokens, version = "", None, 0, ""
        try:
            async with asyncio.timeout(timeout):
                async for result in self._responses(
                    prompt, _sampling_json(sampling), False, timeout, model_version
                ):
                    text, reason, cum, count = _read(result)
                    version = _version(result) or version
                    pieces.append(text)
                    finish_reason = reason or finish_reason
                    logprob = cum if cum is not None else logprob
                    n_tokens = count if count is not None else n_tokens
        except TimeoutError as exc:
            raise LLMTimeoutError(f"{self.model_name}: no answer within {timeout}s") from exc
        return LLMOutput(
            "".join(pieces),
            finish_reason,
            logprob,
            n_tokens,
            time.perf_counter() - started,
            version or model_version,
        )

    async def generate_many(
        self,
        prompts: Iterable[str],
        sampling: SamplingParams | Mapping[str, Any] | str | None = None,
        *,
        timeout_s: float | None = None,
        return_exceptions: bool = False,
    ) -> list[LLMOutput | LLMError]:
        """Generate for all prompts concurrently, so Triton batches them; results in order.

        With return_exceptions=True a failed prompt yields its LLMError in place instead of
        failing the whole call.
        """
        tasks = [self.generate(p, sampling, timeout_s=timeout_s) for p in prompts]
        done = await asyncio.gather(*tasks, return_exceptions=return_exceptions)
        return [r if isinstance(r, LLMOutput | LLMError) else LLMError(str(r)) for r in done]

    async def stream(
        self,
        prompt: str,
        sampling: SamplingParams | Mapping[str, Any] | str | None = None,
        *,
        timeout_s: float | None = None,
        on_complete: Callable[[LLMOutput], None] | None = None,
        model_version: str = "",
    ) -> AsyncIterator[str]:
        """Yield text deltas as the model produces them; `on_complete` gets the summary."""
        timeout = self._timeout(timeout_s)
        started = time.perf_counter()
        pieces: list[str] = []
        finish_reason, logprob, n_tokens, version = "", None, 0, ""
        # The deadline is the gRPC stream's own (DEADLINE_EXCEEDED -> LLMTimeoutError): an
        # asyncio timeout cannot span the yields of an async generator safely.
        async for result in self._responses(
            prompt, _sampling_json(sampling), True, timeout, model_version
        ):
            text, reason, cum, count = _read(result)
            version = _version(result) or version
            finish_reason = reason or finish_reason
            logprob = cum if cum is not None else logprob
            n_tokens = count if count is not None else n_tokens
            if text:
                pieces.append(text)
                yield text
        if on_complete is not None:
            on_complete(
                LLMOutput(
                    "".join(pieces),
                    finish_reason,
                    logprob,
                    n_tokens,
                    time.perf_counter() - started,
                    version or model_version,
                )
            )


def _scalar(result: Any, name: str) -> Any:
    try:
        array = result.as_numpy(name)
    except InferenceServerException:
        return None
    if array is None or array.size == 0:
        return None
    return array.reshape(-1)[0]


def _version(result: Any) -> str:
    """The model version Triton says answered ("" when the response does not say)."""
    try:
        return str(result.get_response().model_version or "")
    except AttributeError:
        return ""


def _read(result: Any) -> tuple[str, str, float | None, int | None]:
    """(text, finish_reason, cumulative_logprob, num_output_tokens) of one response."""
    text = _scalar(result, "text_output")
    reason = _scalar(result, "finish_reason")
    logprob = _scalar(result, "cumulative_logprob")
    count = _scalar(result, "num_output_tokens")

    def decode(v: object) -> str:
        return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)

    reason_text = decode(reason) if reason is not None else ""
    return (
        decode(text) if text is not None else "",
        "" if reason_text in ("None", "null") else reason_text,
        float(logprob) if logprob is not None else None,
        int(count) if count is not None else None,
    )
