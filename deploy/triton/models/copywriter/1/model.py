"""Triton Python-backend model: any Hugging Face causal LM, vLLM-compatible tensor contract.

Tensor names and meanings follow Triton's vLLM backend (text_input, stream,
sampling_parameters, exclude_input_in_output, return_* -> text_output, finish_reason,
cumulative_logprob, num_output_tokens) so a vLLM or TensorRT-LLM model can replace this one
without touching the GenerationService.

Design (like Triton's vllm_backend):
- Decoupled: every request gets its responses through its response sender; stream=true
  sends text deltas as tokens are produced, stream=false one final response.
- execute() only schedules: it parses and tokenizes its requests, answers the bad ones
  with an error, and hands the rest to a background scheduler thread (scheduler.py), then
  returns at once. The scheduler runs ONE decode loop with continuous batching: requests
  join the running batch between decode steps and finished ones leave it, so a request
  never waits for an unrelated batch to end.
- Prefix caching (prefix_cache.py): the KV of a prompt prefix many requests share (the
  template's system part) is computed once and copied into every row starting with it;
  only each row's own suffix is prefilled.
- Per-request sampling parameters and seeds: sampling.py's per-row sampler, the same draws
  whatever the batch (a seeded request's text does not depend on its neighbours).
- Per-request errors (bad JSON, bad values, prompt too long) go to that request only as
  pb_utils.TritonError. A cancelled request (client gone or deadline passed) stops at its
  next check and leaves the batch; others are unaffected. finalize() stops the scheduler
  and fails what it still held as UNAVAILABLE, so clients can retry elsewhere.
- bf16 on a GPU instance, fp32 on CPU.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prefix_cache import PrefixCache
from sampling import (
    FINISH_LENGTH,
    IncrementalDecoder,
    RowState,
    SamplingError,
    SamplingParams,
    parse_sampling_parameters,
)
from scheduler import Scheduler, SchedulerStopped, Sequence

MODEL_DIR_ENV = "COPYWRITER_MODEL_DIR"
VERSION_FILE = "copywriter_version.json"  # in a version dir: where that version's weights are
# Where a container sees the folder that holds published versions' weights (compose, k8s): a
# pointer names the path the cycle wrote on its own machine, this finds the same folder by name.
WEIGHTS_ROOT_ENV = "COPYWRITER_WEIGHTS_ROOT"
TORCH_THREADS_ENV = "COPYWRITER_TORCH_THREADS"  # used when the config parameter is 0
BAD_REQUEST_PREFIX = "bad request: "
FINISH_CANCELLED = "cancelled"
CANCEL_CHECK_EVERY = 8  # tokens between cancellation checks (each check is an IPC round trip)
RESPONDER_STOP_S = 30.0


def _param(model_config: dict, key: str, default: str = "") -> str:
    value = model_config.get("parameters", {}).get(key, {}).get("string_value", "")
    return value if value != "" else default


def _optional_input(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)[0]


def _optional_bool(request, name: str, default: bool) -> bool:
    value = _optional_input(request, name)
    return default if value is None else bool(value)


def _version_weights(args: dict) -> str:
    """Weights named by this version's pointer file, or "" (version 1: config / env as before).

    A version published by the copywriter cycle (`copyloop.generation.copywriter.cycle`) is a
    directory <n>/ holding a link to this model.py and VERSION_FILE, which names its weights
    outside the repository (var/models/copywriter-v<n>): weights never live in git. In a
    container those weights are under WEIGHTS_ROOT_ENV (see `_mounted`).
    """
    version_dir = Path(args["model_repository"]) / str(args.get("model_version", ""))
    pointer = version_dir / VERSION_FILE
    if not pointer.is_file():
        return ""
    weights = str(json.loads(pointer.read_text()).get("model_dir", ""))
    if not weights:
        raise pb_utils.TritonModelException(f"{pointer} names no model_dir")
    return _mounted(weights, os.environ.get(WEIGHTS_ROOT_ENV, ""))


def _mounted(weights: str, root: str) -> str:
    """`weights` where it exists; else, with a weights root mounted (a container), the folder
    of the same name under it (var/models/copywriter-v2 on the host is /weights/versions/
    copywriter-v2 inside)."""
    if Path(weights).is_dir() or not root:
        return weights
    return str(Path(root) / Path(weights).name)


@dataclass(eq=False)
class _Request:
    """One parsed request: owns its response sender and turns scheduler events into responses."""

    sender: object
    prompt: str
    params: SamplingParams
    stream: bool
    exclude_input: bool
    return_finish_reason: bool
    return_cumulative_logprob: bool
    return_num_output_tokens: bool
    state: RowState | None = None
    decoder: IncrementalDecoder | None = None
    completed: bool = False  # the final response (or an error) has been queued or sent
    cancelled: bool = False  # the responder saw the client cancel (read by the scheduler)


class _Responder:
    """Sends responses and asks about cancellation on its own thread, in order.

    Each send or is_cancelled() is an IPC round trip to the Triton server that releases the
    GIL while it waits, so doing them here lets the decode loop run meanwhile instead of
    waiting once per token or finished request. One FIFO thread keeps every request's
    responses in order (stream deltas, then the final one).
    """

    def __init__(self, logger) -> None:
        self.logger = logger
        self._queue: queue.SimpleQueue[tuple[_Request, object, bool] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="copywriter-responder", daemon=True)
        self._thread.start()

    def send(self, req: _Request, response, final: bool) -> None:
        if final:
            req.completed = True
        self._queue.put((req, response, final))

    def check_cancelled(self, req: _Request) -> None:
        self._queue.put((req, None, False))

    def stop(self) -> None:
        """Send what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(RESPONDER_STOP_S)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            req, response, final = item
            if response is None:
                if not req.completed and _is_cancelled(req):
                    req.cancelled = True
                continue
            flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
            try:
                req.sender.send(response, flags=flags)
            except Exception as exc:  # e.g. the request was cancelled and released
                self.logger.log_warn(f"copywriter: dropping a response: {exc!r}")
                req.completed = req.cancelled = True


def _is_cancelled(req: _Request) -> bool:
    is_cancelled = getattr(req.sender, "is_cancelled", None)
    try:
        return bool(is_cancelled()) if is_cancelled is not None else False
    except Exception:
        return False


class TritonPythonModel:
    """Loads the model once per instance; a scheduler thread generates for all requests."""

    def initialize(self, args: dict) -> None:
        self.model_config = json.loads(args["model_config"])
        self.logger = pb_utils.Logger
        if not pb_utils.using_decoupled_model_transaction_policy(self.model_config):
            raise pb_utils.TritonModelException("copywriter must be configured as decoupled")
        model_dir = (
            _version_weights(args)
            or _param(self.model_config, "model_dir")
            or os.environ.get(MODEL_DIR_ENV, "")
        )
        if not model_dir:
            raise pb_utils.TritonModelException(
                f"no model: set the config parameter model_dir or env {MODEL_DIR_ENV}"
            )
        model_path = Path(model_dir)
        if not model_path.is_absolute():
            model_path = Path(args["model_repository"]) / model_path
        threads = int(_param(self.model_config, "torch_threads", "0")) or int(
            os.environ.get(TORCH_THREADS_ENV, "0") or 0
        )
        if threads > 0:
            torch.set_num_threads(threads)

        on_gpu = args.get("model_instance_kind") == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        dtype = torch.bfloat16 if on_gpu else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # On CPU the eager attention is faster than SDPA for one-token decode steps over a
        # padded KV batch (measured on the small copywriter: 2.4 vs 3.5 ms at 32 rows).
        attention = _param(self.model_config, "attn_implementation") or (
            "sdpa" if on_gpu else "eager"
        )
        self.model = AutoModelForCausalLM.from_pretrained(
            str(model_path), dtype=dtype, attn_implementation=attention
        )
        self.model.to(self.device).eval()
        self.eos_token_id = self.tokenizer.eos_token_id
        self.context_limit = int(
            getattr(self.model.config, "max_position_embeddings", 0)
            or getattr(self.model.config, "n_positions", 0)
            or 1 << 30
        )
        self.default_max_tokens = int(_param(self.model_config, "default_max_tokens", "64"))
        self.max_tokens_limit = int(_param(self.model_config, "max_tokens_limit", "512"))
        max_running = int(_param(self.model_config, "max_running_requests", "0")) or int(
            self.model_config["max_batch_size"]
        )
        prefix_tokens = int(_param(self.model_config, "prefix_cache_tokens", "16384"))
        self.responder = _Responder(self.logger)
        self.scheduler = Scheduler(
            self.model,
            self.eos_token_id,
            pad_token_id=int(self.tokenizer.pad_token_id or 0),
            device=self.device,
            max_batch=max_running,
            prefix_cache=PrefixCache(max_tokens=prefix_tokens) if prefix_tokens > 0 else None,
            log_error=self.logger.log_error,
        )
        self.scheduler.start()
        self.logger.log_info(
            f"copywriter: loaded {model_path} on {self.device} ({dtype}, {attention} attention), "
            f"context {self.context_limit}, max_batch_size {self.model_config['max_batch_size']}, "
            f"running rows <= {max_running}, prefix cache {prefix_tokens} tokens"
        )

    # ----------------------------------------------------------------------------------
    def _parse(self, request) -> _Request:
        raw_text = _optional_input(request, "text_input")
        if raw_text is None:
            raise SamplingError("text_input is required")
        prompt = raw_text.decode("utf-8") if isinstance(raw_text, bytes) else str(raw_text)
        params = parse_sampling_parameters(
            _optional_input(request, "sampling_parameters"),
            self.default_max_tokens,
            self.max_tokens_limit,
        )
        return _Request(
            sender=request.get_response_sender(),
            prompt=prompt,
            params=params,
            stream=_optional_bool(request, "stream", False),
            exclude_input=_optional_bool(request, "exclude_input_in_output", False),
            return_finish_reason=_optional_bool(request, "return_finish_reason", False),
            return_cumulative_logprob=_optional_bool(request, "return_cumulative_logprob", False),
            return_num_output_tokens=_optional_bool(request, "return_num_output_tokens", False),
        )

    def _send_error(self, sender, message: str) -> None:
        error = pb_utils.TritonError(BAD_REQUEST_PREFIX + message, pb_utils.TritonError.INVALID_ARG)
        try:
            sender.send(
                pb_utils.InferenceResponse(output_tensors=[], error=error),
                flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
            )
        except Exception as exc:
            self.logger.log_warn(f"copywriter: dropping an error response: {exc!r}")

    @staticmethod
    def _text_tensor(text: str) -> pb_utils.Tensor:
        return pb_utils.Tensor("text_output", np.array([[text.encode("utf-8")]], dtype=np.object_))

    def _final_response(self, req: _Request, text: str) -> pb_utils.InferenceResponse:
        assert req.state is not None
        outputs = [self._text_tensor(text)]
        if req.return_finish_reason:
            outputs.append(
                pb_utils.Tensor(
                    "finish_reason",
                    np.array([[req.state.finish_reason.encode()]], dtype=np.object_),
                )
            )
        if req.return_cumulative_logprob:
            outputs.append(
                pb_utils.Tensor(
                    "cumulative_logprob",
                    np.array([[req.state.cumulative_logprob]], dtype=np.float32),
                )
            )
        if req.return_num_output_tokens:
            outputs.append(
                pb_utils.Tensor(
                    "num_output_tokens", np.array([[len(req.state.token_ids)]], dtype=np.uint32)
                )
            )
        return pb_utils.InferenceResponse(output_tensors=outputs)

    def _send(self, req: _Request, response, final: bool) -> None:
        """Queue a response for the responder thread (a dead client fails only its request)."""
        if req.completed:
            return
        self.responder.send(req, response, final)

    def _decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    # ----------------------------------------------------------------------------------
    def execute(self, requests: list) -> None:
        """Parse, validate and tokenize; hand the good requests to the scheduler; return."""
        started = time.perf_counter()
        batch: list[_Request] = []
        for request in requests:
            try:
                batch.append(self._parse(request))
            except SamplingError as exc:
                self._send_error(request.get_response_sender(), str(exc))
        if not batch:
            return None
        try:
            seqs = self._sequences(batch)
        except Exception as exc:  # one failure must not leave other requests hanging
            self.logger.log_error(f"copywriter: scheduling failed: {exc!r}")
            error = pb_utils.TritonError(f"generation failed: {exc}")
            for req in batch:
                if not req.completed:
                    self._send(
                        req, pb_utils.InferenceResponse(output_tensors=[], error=error), final=True
                    )
            return None
        self.scheduler.submit(seqs)
        self.logger.log_verbose(
            f"copywriter: scheduled={len(seqs)} requests={len(requests)} "
            f"seconds={time.perf_counter() - started:.4f}"
        )
        return None

    def _sequences(self, batch: list[_Request]) -> list[Sequence]:
        encoded = self.tokenizer([r.prompt for r in batch], add_special_tokens=False)["input_ids"]
        seqs: list[Sequence] = []
        for req, ids in zip(batch, encoded, strict=True):
            room = self.context_limit - len(ids)
            if not ids or room < 1:
                req.completed = True
                self._send_error(
                    req.sender,
                    f"prompt has {len(ids)} tokens; the model's context is {self.context_limit}",
                )
                continue
            if req.params.max_tokens > room:  # cut to the context; reported as "length"
                req.params = SamplingParams(**{**req.params.__dict__, "max_tokens": room})
            req.state = RowState.start(req.params)
            req.decoder = IncrementalDecoder(self._decode)
            seqs.append(
                Sequence(
                    list(ids),
                    req.state,
                    on_token=lambda seq, req=req: self._on_token(req),
                    on_finish=lambda seq, req=req: self._on_finish(req),
                    on_error=lambda seq, exc, req=req: self._on_error(req, exc),
                )
            )
        return seqs

    # ---- scheduler hooks (scheduler thread) ---------------------------------------------
    def _on_token(self, req: _Request) -> None:
        row = req.state
        assert row is not None and req.decoder is not None
        if req.cancelled:  # seen by the responder: the row leaves the batch after this step
            row.finished, row.finish_reason = True, FINISH_CANCELLED
            return
        if len(row.token_ids) % CANCEL_CHECK_EVERY == 0:
            self.responder.check_cancelled(req)  # answered a few steps later
        if not req.stream or row.finished:
            return  # the final response carries the rest
        delta = req.decoder.delta(row.token_ids)
        if delta:
            self._send(
                req,
                pb_utils.InferenceResponse(output_tensors=[self._text_tensor(delta)]),
                final=False,
            )

    def _on_finish(self, req: _Request) -> None:
        state = req.state
        assert state is not None and req.decoder is not None
        if req.completed:
            return
        if state.finish_reason == FINISH_CANCELLED:
            self._send(
                req,
                pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError("request cancelled")
                ),
                final=True,
            )
            return
        if not state.finished:
            state.finished, state.finish_reason = True, FINISH_LENGTH
        if req.stream:
            text = req.decoder.delta(state.token_ids, final=True)
        else:
            text = self._decode(state.token_ids)
            if not req.exclude_input:
                text = req.prompt + text
        self._send(req, self._final_response(req, text), final=True)

    def _on_error(self, req: _Request, exc: BaseException) -> None:
        if req.completed:
            return
        if isinstance(exc, SchedulerStopped):
            code = getattr(pb_utils.TritonError, "UNAVAILABLE", pb_utils.TritonError.INTERNAL)
            # Stream responses carry only the message: "is not ready" is what the
            # client's error mapping reads as UNAVAILABLE (retryable).
            error = pb_utils.TritonError(f"copywriter is not ready: {exc}", code)
        else:
            error = pb_utils.TritonError(f"generation failed: {exc}")
        self._send(req, pb_utils.InferenceResponse(output_tensors=[], error=error), final=True)

    def finalize(self) -> None:
        """Stop the scheduler (unfinished requests get UNAVAILABLE), then free the model."""
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            scheduler.stop()  # fails what it still holds: those errors are queued...
            self.responder.stop()  # ...and sent before this returns
            stats = scheduler.stats
            self.logger.log_info(
                f"copywriter: scheduler stopped: steps={stats.steps} "
                f"mean_rows={stats.step_rows / max(1, stats.steps):.1f} "
                f"admitted={stats.admitted} prefill_tokens={stats.prefill_tokens} "
                f"prefix_reused={stats.prefix_tokens_reused} "
                f"prefill_s={stats.seconds_prefill:.2f} decode_s={stats.seconds_decode:.2f} "
                f"sample_s={stats.seconds_sample:.2f} finish_s={stats.seconds_finish:.2f} "
                f"batch_s={stats.seconds_batch:.2f}"
            )
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
