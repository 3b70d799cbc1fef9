"""Triton Python-backend model: any Hugging Face causal LM, vLLM-compatible tensor contract.

Tensor names and meanings follow Triton's vLLM backend (text_input, stream,
sampling_parameters, exclude_input_in_output, return_* -> text_output, finish_reason,
cumulative_logprob, num_output_tokens) so a vLLM or TensorRT-LLM model can replace this one
without touching the GenerationService.

Design:
- Decoupled (like vLLM): every request gets its responses through its response sender;
  stream=true sends text deltas as tokens are produced, stream=false one final response.
- Dynamic batching: all requests of one execute() call run as ONE left-padded generate().
  execute() blocks while generating, so requests arriving meanwhile queue up in Triton's
  dynamic batcher and form the next batch.
- Per-request sampling parameters inside that one generate(): see sampling.py (a per-row
  sampler behind a greedy generate; per-row seeds, temperature, top-k, top-p, max_tokens).
- Per-request errors (bad JSON, bad values, prompt too long) are sent to that request only
  as pb_utils.TritonError; the rest of the batch proceeds. A cancelled request (client gone
  or deadline passed) stops generating at its next check; others are unaffected.
- bf16 on a GPU instance, fp32 on CPU.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling import (
    FINISH_LENGTH,
    IncrementalDecoder,
    RowSampler,
    RowsFinished,
    RowState,
    SamplingError,
    SamplingParams,
    parse_sampling_parameters,
)

MODEL_DIR_ENV = "COPYWRITER_MODEL_DIR"
TORCH_THREADS_ENV = "COPYWRITER_TORCH_THREADS"  # used when the config parameter is 0
BAD_REQUEST_PREFIX = "bad request: "
FINISH_CANCELLED = "cancelled"
CANCEL_CHECK_EVERY = 8  # tokens between cancellation checks (each check is an IPC round trip)


def _param(model_config: dict, key: str, default: str = "") -> str:
    value = model_config.get("parameters", {}).get(key, {}).get("string_value", "")
    return value if value != "" else default


def _optional_input(request, name: str):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)[0]


def _optional_bool(request, name: str, default: bool) -> bool:
    value = _optional_input(request, name)
    return default if value is None else bool(value)


@dataclass(eq=False)
class _Request:
    """One parsed request plus its generation state."""

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
    completed: bool = False  # the final response (or an error) has been sent


class TritonPythonModel:
    """Loads the model once per instance; generates one batch per execute()."""

    def initialize(self, args: dict) -> None:
        self.model_config = json.loads(args["model_config"])
        self.logger = pb_utils.Logger
        if not pb_utils.using_decoupled_model_transaction_policy(self.model_config):
            raise pb_utils.TritonModelException("copywriter must be configured as decoupled")
        model_dir = _param(self.model_config, "model_dir") or os.environ.get(MODEL_DIR_ENV, "")
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
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
        self.model.to(self.device).eval()
        self.eos_token_id = self.tokenizer.eos_token_id
        self.context_limit = int(
            getattr(self.model.config, "max_position_embeddings", 0)
            or getattr(self.model.config, "n_positions", 0)
            or 1 << 30
        )
        self.default_max_tokens = int(_param(self.model_config, "default_max_tokens", "64"))
        self.max_tokens_limit = int(_param(self.model_config, "max_tokens_limit", "512"))
        self.logger.log_info(
            f"copywriter: loaded {model_path} on {self.device} ({dtype}), "
            f"context {self.context_limit}, max_batch_size {self.model_config['max_batch_size']}"
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
        """Send to one request; a client that went away must not fail the rest of the batch."""
        flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
        try:
            req.sender.send(response, flags=flags)
        except Exception as exc:  # e.g. the request was cancelled and released
            self.logger.log_warn(f"copywriter: dropping a response: {exc!r}")
            req.completed = True
            if req.state is not None and not req.state.finished:
                req.state.finished, req.state.finish_reason = True, FINISH_CANCELLED
        if final:
            req.completed = True

    def _cancelled(self, req: _Request) -> bool:
        is_cancelled = getattr(req.sender, "is_cancelled", None)
        try:
            return bool(is_cancelled()) if is_cancelled is not None else False
        except Exception:
            return False

    def _decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    # ----------------------------------------------------------------------------------
    def execute(self, requests: list) -> None:
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
            self._generate(batch)
        except Exception as exc:  # one failure must not leave other requests hanging
            self.logger.log_error(f"copywriter: generation failed: {exc!r}")
            error = pb_utils.TritonError(f"generation failed: {exc}")
            for req in batch:
                if not req.completed:
                    self._send(
                        req, pb_utils.InferenceResponse(output_tensors=[], error=error), final=True
                    )
        self.logger.log_verbose(
            f"copywriter: batch_size={len(batch)} requests={len(requests)} "
            f"seconds={time.perf_counter() - started:.3f}"
        )
        return None

    def _generate(self, batch: list[_Request]) -> None:
        encoded = self.tokenizer([r.prompt for r in batch], add_special_tokens=False)["input_ids"]
        runnable: list[tuple[_Request, list[int]]] = []
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
            runnable.append((req, ids))
        if not runnable:
            return
        requests = [req for req, _ in runnable]
        padded = self.tokenizer.pad(
            {"input_ids": [ids for _, ids in runnable]}, padding=True, return_tensors="pt"
        )
        rows = [req.state for req in requests]

        def on_token(index: int, row: RowState) -> None:
            req = requests[index]
            if len(row.token_ids) % CANCEL_CHECK_EVERY == 0 and self._cancelled(req):
                row.finished, row.finish_reason = True, FINISH_CANCELLED
                return  # the row stops; its slot in the batch idles until the batch ends
            if not req.stream or row.finished:
                return  # the final response carries the rest
            delta = req.decoder.delta(row.token_ids)
            if delta:
                self._send(
                    req,
                    pb_utils.InferenceResponse(output_tensors=[self._text_tensor(delta)]),
                    final=False,
                )

        sampler = RowSampler(rows, self.eos_token_id, on_token)
        generation_config = GenerationConfig(
            max_new_tokens=max(r.params.max_tokens for r in rows),
            do_sample=False,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_id,
        )
        with torch.inference_mode():
            self.model.generate(
                input_ids=padded["input_ids"].to(self.device),
                attention_mask=padded["attention_mask"].to(self.device),
                generation_config=generation_config,
                logits_processor=[sampler],
                stopping_criteria=[RowsFinished(rows)],
            )
        for req in requests:
            state = req.state
            if req.completed:
                continue
            if state.finish_reason == FINISH_CANCELLED:
                self._send(
                    req,
                    pb_utils.InferenceResponse(
                        output_tensors=[], error=pb_utils.TritonError("request cancelled")
                    ),
                    final=True,
                )
                continue
            if not state.finished:  # generate() stopped on its own limit
                state.finished, state.finish_reason = True, FINISH_LENGTH
            if req.stream:
                text = req.decoder.delta(state.token_ids, final=True)
            else:
                text = self._decode(state.token_ids)
                if not req.exclude_input:
                    text = req.prompt + text
            self._send(req, self._final_response(req, text), final=True)

    def finalize(self) -> None:
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
