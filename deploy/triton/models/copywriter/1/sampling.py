"""Per-request sampling for a batch of rows whose sampling parameters differ.

Triton hands the model requests whose sampling parameters differ (temperature, top_p, top_k,
seed, max_tokens, penalties). `RowSampler.sample()` does the work per row: it applies that
row's presence/frequency penalties, temperature, top-k and top-p, draws once per token from
that row's own seeded RNG, records the token and its log-probability in the row's state,
decides when the row is finished (EOS or its own max_tokens) and reports each token as it is
produced, which is what streaming is built on.

Two callers: the continuous-batching scheduler (scheduler.py) calls `sample()` on each
forward's last logits, with a sampler rebuilt whenever rows join or leave (penalty counts
are rebuilt from the rows' tokens); a plain Hugging Face `generate()` can use the same
sampler as its logits processor (`__call__` returns logits that are -inf everywhere except
the chosen token, so greedy decoding picks exactly that one) with `RowsFinished` as its
stopping criterion.

Pure torch, no Triton import: unit-testable in-process and shared by the benchmark.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, StoppingCriteria

FINISH_STOP = "stop"
FINISH_LENGTH = "length"


class SamplingError(ValueError):
    """A request's sampling_parameters are malformed (a client error, never a server one)."""


@dataclass(frozen=True)
class SamplingParams:
    """vLLM-style sampling parameters; temperature 0 means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: disabled
    seed: int | None = None
    max_tokens: int = 64
    ignore_eos: bool = False
    presence_penalty: float = 0.0  # vLLM semantics: on tokens already generated (not prompt)
    frequency_penalty: float = 0.0


_KNOWN_KEYS = {
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "max_tokens",
    "ignore_eos",
    "presence_penalty",
    "frequency_penalty",
}
# vLLM clients send these too; accepted and ignored rather than rejected.
_IGNORED_KEYS = {
    "n",
    "best_of",
    "stop",
    "repetition_penalty",
    "min_p",
    "logprobs",
    "skip_special_tokens",
}


def _number(data: dict, key: str, kind: type, default):
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SamplingError(f"sampling_parameters.{key} must be a number, got {value!r}")
    try:
        number = kind(float(value)) if kind is float else int(str(value))
    except ValueError as exc:
        raise SamplingError(f"sampling_parameters.{key} must be a number, got {value!r}") from exc
    return number


def parse_sampling_parameters(
    raw: str | bytes | None, default_max_tokens: int, max_tokens_limit: int
) -> SamplingParams:
    """Parse and validate the JSON `sampling_parameters` input; raise SamplingError if bad."""
    if raw is None or (isinstance(raw, (bytes, str)) and not raw.strip()):
        return SamplingParams(max_tokens=default_max_tokens)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SamplingError(f"sampling_parameters is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SamplingError("sampling_parameters must be a JSON object")
    unknown = set(data) - _KNOWN_KEYS - _IGNORED_KEYS
    if unknown:
        raise SamplingError(f"unknown sampling_parameters: {sorted(unknown)}")
    temperature = _number(data, "temperature", float, 1.0)
    top_p = _number(data, "top_p", float, 1.0)
    top_k = _number(data, "top_k", int, 0)
    max_tokens = _number(data, "max_tokens", int, default_max_tokens)
    seed = data.get("seed")
    if seed is not None:
        seed = _number(data, "seed", int, None)
    ignore_eos = data.get("ignore_eos", False)
    if isinstance(ignore_eos, str):
        ignore_eos = ignore_eos.strip().lower() in ("1", "true", "yes")
    if temperature < 0:
        raise SamplingError("sampling_parameters.temperature must be >= 0")
    if not 0 < top_p <= 1:
        raise SamplingError("sampling_parameters.top_p must be in (0, 1]")
    if top_k < -1:
        raise SamplingError("sampling_parameters.top_k must be -1, 0 (off) or positive")
    if not 1 <= max_tokens <= max_tokens_limit:
        raise SamplingError(f"sampling_parameters.max_tokens must be in [1, {max_tokens_limit}]")
    presence = _number(data, "presence_penalty", float, 0.0)
    frequency = _number(data, "frequency_penalty", float, 0.0)
    if not (-2 <= presence <= 2 and -2 <= frequency <= 2):
        raise SamplingError("sampling_parameters presence/frequency_penalty must be in [-2, 2]")
    return SamplingParams(
        temperature, top_p, max(top_k, 0), seed, max_tokens, bool(ignore_eos), presence, frequency
    )


@dataclass(eq=False)
class RowState:
    """Generation state of one request (one batch row)."""

    params: SamplingParams
    generator: torch.Generator
    token_ids: list[int]
    cumulative_logprob: float = 0.0
    finished: bool = False
    finish_reason: str = ""

    @classmethod
    def start(cls, params: SamplingParams) -> RowState:
        seed = params.seed if params.seed is not None else random.SystemRandom().getrandbits(63)
        return cls(params, torch.Generator().manual_seed(seed), [])


TokenCallback = Callable[[int, RowState], None]


class RowSampler(LogitsProcessor):
    """Samples every row with its own parameters and RNG; see the module docstring."""

    def __init__(
        self,
        rows: Sequence[RowState],
        eos_token_id: int | None,
        on_token: TokenCallback | None = None,
    ) -> None:
        self.rows = list(rows)
        self.eos_token_id = eos_token_id
        self.on_token = on_token
        self.steps = 0
        params = [r.params for r in self.rows]
        self._temperature = torch.tensor([p.temperature for p in params], dtype=torch.float32)
        self._top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32)
        self._top_k = torch.tensor([p.top_k for p in params], dtype=torch.long)
        self._ignore_eos = torch.tensor([p.ignore_eos for p in params], dtype=torch.bool)
        self._presence = torch.tensor([p.presence_penalty for p in params], dtype=torch.float32)
        self._frequency = torch.tensor([p.frequency_penalty for p in params], dtype=torch.float32)
        self._penalised = bool((self._presence != 0).any() or (self._frequency != 0).any())
        self._counts: torch.Tensor | None = None  # [rows, vocab] generated-token counts
        # Decided once per batch, not per token: the decode loop calls this every step.
        self._any_ignore_eos = eos_token_id is not None and any(p.ignore_eos for p in params)
        self._any_top_k = any(p.top_k > 0 for p in params)
        self._any_top_p = any(p.top_p < 1 for p in params)
        self._all_greedy = all(p.temperature <= 0 for p in params)
        self._any_greedy = any(p.temperature <= 0 for p in params)
        self._device: torch.device | None = None

    def _to(self, device: torch.device) -> None:
        """Move the per-row parameters to the logits' device once."""
        if self._device != device:
            for name in ("_temperature", "_top_p", "_top_k", "_ignore_eos"):
                setattr(self, name, getattr(self, name).to(device))
            for name in ("_presence", "_frequency"):
                setattr(self, name, getattr(self, name).to(device))
            self._device = device

    def _choose(self, scores: torch.Tensor) -> torch.Tensor:
        device = scores.device
        self._to(device)
        logits = scores.float()
        vocab = logits.shape[-1]
        if self._any_ignore_eos:
            logits = logits.clone()
            logits[self._ignore_eos, self.eos_token_id] = float("-inf")
        if self._penalised and self._counts is not None:
            counts = self._counts.to(device)
            logits = (
                logits
                - self._frequency[:, None] * counts
                - self._presence[:, None] * (counts > 0).float()
            )
        if self._all_greedy:  # no draws: a greedy row never uses its generator
            return logits.argmax(dim=-1)
        temperature = self._temperature
        greedy = temperature <= 0
        logits = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
        if self._any_top_k:
            top_k = self._top_k
            k = torch.where(top_k > 0, top_k.clamp(max=vocab), torch.full_like(top_k, vocab))
            kth = logits.topk(int(k.max()), dim=-1).values.gather(1, (k - 1)[:, None])
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if self._any_top_p:
            top_p = self._top_p
            sorted_probs, sorted_idx = probs.sort(dim=-1, descending=True)
            mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
            sorted_probs = sorted_probs.masked_fill(mass_before > top_p[:, None], 0.0)
            probs = torch.zeros_like(probs).scatter(1, sorted_idx, sorted_probs)
        # One uniform draw per row from that row's own generator (CPU, so GPU and CPU agree).
        uniform = torch.stack([torch.rand((), generator=r.generator) for r in self.rows])
        cdf = probs.cumsum(dim=-1)
        target = (uniform.to(device) * cdf[:, -1])[:, None]
        sampled = torch.searchsorted(cdf, target).squeeze(1).clamp(max=vocab - 1)
        if not self._any_greedy:
            return sampled
        return torch.where(greedy, logits.argmax(dim=-1), sampled)

    def sample(self, scores: torch.Tensor) -> torch.Tensor:
        """Choose one token per row, record it in the row's state and report it; [rows] ids.

        The continuous-batching scheduler calls this directly on a forward's last logits;
        generate() reaches it through __call__.
        """
        if self._penalised and self._counts is None:
            self._counts = self._initial_counts(scores)
        chosen = self._choose(scores)
        if self._counts is not None:
            self._counts[torch.arange(len(self.rows), device=scores.device), chosen] += 1
        logprobs = torch.log_softmax(scores.float(), dim=-1).gather(1, chosen[:, None]).squeeze(1)
        chosen_list = chosen.tolist()
        logprob_list = logprobs.tolist()
        for index, (row, token, logprob) in enumerate(
            zip(self.rows, chosen_list, logprob_list, strict=True)
        ):
            if row.finished:
                continue
            row.token_ids.append(token)
            row.cumulative_logprob += logprob
            if token == self.eos_token_id and not row.params.ignore_eos:
                row.finished, row.finish_reason = True, FINISH_STOP
            elif len(row.token_ids) >= row.params.max_tokens:
                row.finished, row.finish_reason = True, FINISH_LENGTH
            if self.on_token is not None:
                self.on_token(index, row)
        self.steps += 1
        return chosen

    def _initial_counts(self, scores: torch.Tensor) -> torch.Tensor:
        """Token counts of what each row generated so far: a sampler built for a batch that
        rows join mid-generation must penalise their earlier tokens too."""
        counts = torch.zeros(scores.shape, dtype=torch.float32, device=scores.device)
        for index, row in enumerate(self.rows):
            if row.token_ids:
                ids = torch.tensor(row.token_ids, dtype=torch.long, device=scores.device)
                counts[index].index_add_(0, ids, torch.ones_like(ids, dtype=torch.float32))
        return counts

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = self.sample(scores)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(1, chosen[:, None], 0.0)


class RowsFinished(StoppingCriteria):
    """Per-row stop flags from the sampler's own bookkeeping (EOS or the row's max_tokens)."""

    def __init__(self, rows: Sequence[RowState]) -> None:
        self.rows = list(rows)

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.BoolTensor:
        return torch.tensor(
            [r.finished for r in self.rows], dtype=torch.bool, device=input_ids.device
        )


class IncrementalDecoder:
    """Turns a growing token list into text deltas without splitting a multi-byte character.

    Byte-level BPE can cut a Chinese character or an emoji across tokens; a delta is held
    back while the decoded tail is an incomplete character (U+FFFD).
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self.emitted = ""

    def text(self, token_ids: list[int]) -> str:
        return self._decode(token_ids)

    def delta(self, token_ids: list[int], final: bool = False) -> str:
        text = self._decode(token_ids)
        if not final and text.endswith("\ufffd"):
            return ""
        if not text.startswith(self.emitted):  # a merge changed earlier text: resend nothing
            return ""
        delta, self.emitted = text[len(self.emitted) :], text
        return delta
