"""Iteration-level scheduling (continuous batching) over a Hugging Face causal LM.

One `generate()` per batch makes every request wait for the batch before it and keeps
finished rows' slots busy until the longest row ends. Here a single decode loop owns the
model: between two decode steps, finished rows leave the running batch and waiting
requests join it (after their prefill), so the batch stays full under load and a request
starts as soon as the next step begins.

Layout of the running batch: one key/value buffer per layer, [rows, heads, capacity,
head_dim], and one attention mask [rows, capacity]. All rows append their next token at the
same column, so a decode step writes one column in place (no per-step concatenation); a row
that joined later simply has masked (zero) columns on its left, and its real position ids
are passed explicitly. The rows joining at one step are prefilled in ONE forward: each row
starts from the longest cached prefix of its prompt (prefix_cache.py; the template's system
part, reused from earlier requests) and only its own suffix is computed; its prompt KV is
then kept in the cache for the requests after it.

Sampling is sampling.RowSampler's, row by row with each request's own parameters and seeded
generator, drawing once per token exactly as in the generate() path: a seeded request gets
the same tokens whatever it is batched with (up to floating-point noise in the logits).

Pure torch + transformers, no Triton import: the Triton model (model.py) wires requests to
`Sequence` hooks; tests and benches can drive `Scheduler.step()` in-process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

try:  # imported as a package (tests, benches)
    from .prefix_cache import PrefixCache, PrefixHit
    from .sampling import RowSampler, RowState
except ImportError:  # Triton loads model.py as a top-level module, this folder on sys.path
    from prefix_cache import PrefixCache, PrefixHit
    from sampling import RowSampler, RowState

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [rows, heads, time, dim]


class SchedulerStopped(RuntimeError):
    """The scheduler shut down before this sequence finished (the model is unloading)."""


@dataclass(eq=False)
class Sequence:
    """One request inside the scheduler; the hooks are how the outside world hears of it.

    `on_token(seq)` runs after each generated token (it may mark `seq.state` finished, e.g.
    on cancellation); `on_finish(seq)` once when the row leaves finished; `on_error(seq, exc)`
    instead of on_finish when it cannot be completed. Hooks run on the scheduler thread.
    """

    prompt_ids: list[int]
    state: RowState
    on_token: Callable[[Sequence], None] | None = None
    on_finish: Callable[[Sequence], None] | None = None
    on_error: Callable[[Sequence, BaseException], None] | None = None
    done: bool = False  # on_finish or on_error has run


@dataclass
class SchedulerStats:
    """Where the scheduler's time goes; counters only ever grow."""

    steps: int = 0
    step_rows: int = 0  # sum of running rows over decode steps (mean batch = step_rows / steps)
    admitted: int = 0
    prefill_tokens: int = 0  # suffix tokens actually prefilled
    prefix_tokens_reused: int = 0  # prompt tokens taken from the prefix cache, not prefilled
    prefix_tokens_stored: int = 0
    seconds_prefill: float = 0.0
    seconds_decode: float = 0.0  # decode forwards
    seconds_sample: float = 0.0  # sampling + on_token hooks (stream sends, cancel checks)
    seconds_finish: float = 0.0  # on_finish hooks (final responses)
    seconds_batch: float = 0.0  # joining / leaving rows: buffer copies
    extra: dict[str, float] = field(default_factory=dict)


class _BufferLayer(DynamicLayer):
    """A DynamicLayer that writes new keys/values in place into a preallocated buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self._key_buffer, self._value_buffer, self._length = keys, values, length
        self.dtype, self.device = keys.dtype, keys.device
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]
        self.is_initialized = True

    def get_seq_length(self) -> int:
        return self._length

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self._length + key_states.shape[-2]
        self._key_buffer[:, :, self._length : end].copy_(key_states)
        self._value_buffer[:, :, self._length : end].copy_(value_states)
        self._length = end
        self.keys, self.values = self._key_buffer[:, :, :end], self._value_buffer[:, :, :end]
        return self.keys, self.values


def _cache(keys: list[torch.Tensor], values: list[torch.Tensor], length: int) -> Cache:
    return Cache(layers=[_BufferLayer(k, v, length) for k, v in zip(keys, values, strict=True)])


@dataclass(eq=False)
class _Rows:
    """A set of rows with their KV buffers: the running batch, or the rows just prefilled."""

    seqs: list[Sequence]
    keys: list[torch.Tensor]  # per layer [rows, heads, capacity, dim]
    values: list[torch.Tensor]
    mask: torch.Tensor  # [rows, capacity] long, 1 = a real token
    length: int  # used columns
    next_tokens: torch.Tensor  # [rows] the token each row feeds next
    positions: torch.Tensor  # [rows] its position id

    @property
    def capacity(self) -> int:
        return self.mask.shape[1]


def _headroom(seqs: Iterable[Sequence]) -> int:
    return max((s.state.params.max_tokens - len(s.state.token_ids) for s in seqs), default=1) + 1


class Scheduler:
    """Runs sequences through the model with continuous batching; see the module docstring."""

    def __init__(
        self,
        model: torch.nn.Module,
        eos_token_id: int | None,
        *,
        pad_token_id: int = 0,
        device: torch.device | str = "cpu",
        max_batch: int = 64,
        prefix_cache: PrefixCache | None = None,
        log_error: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.device = torch.device(device)
        self.max_batch = max(1, max_batch)
        self.prefix_cache = prefix_cache
        self.stats = SchedulerStats()
        self._log_error = log_error or (lambda message: None)
        self._inbox: deque[Sequence] = deque()
        self._lock = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._batch: _Rows | None = None
        self._sampler: RowSampler | None = None
        self._joining: list[Sequence] = []  # taken from the inbox, not yet in the batch
        self._kv_template: KV | None = None

    # ---- threading ---------------------------------------------------------------------
    def submit(self, seqs: Iterable[Sequence]) -> None:
        """Queue sequences; they join the running batch before its next decode step."""
        seqs = list(seqs)
        with self._lock:
            if self._stopping:
                stopped = True
            else:
                stopped = False
                self._inbox.extend(seqs)
                self._lock.notify()
        if stopped:
            for seq in seqs:
                self._fail(seq, SchedulerStopped("the model is shutting down"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="copywriter-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loop after its current step; unfinished sequences get on_error."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._fail_all(SchedulerStopped("the model is shutting down"))

    @property
    def pending(self) -> int:
        """Sequences waiting or running."""
        with self._lock:
            waiting = len(self._inbox)
        return waiting + (len(self._batch.seqs) if self._batch is not None else 0)

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._lock:
                    while not self._stopping and not self._inbox and self._batch is None:
                        self._lock.wait()
                    if self._stopping:
                        return
                try:
                    self.step()
                except Exception as exc:  # never let the loop die: fail what it was running
                    self._log_error(f"copywriter scheduler: step failed: {exc!r}")
                    self._fail_running(exc)

    def run_until_idle(self, max_steps: int = 1_000_000) -> None:
        """Drive the loop on the calling thread until nothing waits or runs (tests, benches)."""
        with torch.inference_mode():
            for _ in range(max_steps):
                if not self.step():
                    return

    # ---- one iteration -----------------------------------------------------------------
    def step(self) -> bool:
        """Admit waiting sequences, then run one decode step; False when there was nothing."""
        with self._lock:
            room = self.max_batch - (len(self._batch.seqs) if self._batch is not None else 0)
            joining = [self._inbox.popleft() for _ in range(min(room, len(self._inbox)))]
        if not joining and self._batch is None:
            return False
        if joining:
            self._joining = joining
            self._admit(joining)
            self._joining = []
        if self._batch is not None:
            self._decode()
        return True

    def _admit(self, joining: list[Sequence]) -> None:
        """Prefill the joining rows in one forward and add them to the running batch."""
        cache = self.prefix_cache
        hits = [cache.lookup(seq.prompt_ids) if cache else None for seq in joining]
        started = time.perf_counter()
        try:
            rows = self._prefill(hits, joining)
        except Exception as exc:
            self._log_error(f"copywriter scheduler: prefill failed: {exc!r}")
            for seq in joining:
                self._fail(seq, exc)
            return
        finally:
            self.stats.seconds_prefill += time.perf_counter() - started
        self.stats.admitted += len(joining)
        self._merge(rows)

    def _empty_kv(
        self, rows: int, capacity: int, like: KV | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if like is None:
            like = self._kv_shape()
        keys = [
            torch.zeros((rows, k.shape[1], capacity, k.shape[3]), dtype=k.dtype, device=k.device)
            for k, _ in like
        ]
        values = [
            torch.zeros((rows, v.shape[1], capacity, v.shape[3]), dtype=v.dtype, device=v.device)
            for _, v in like
        ]
        return keys, values

    def _kv_shape(self) -> KV:
        """Zero-length per-layer tensors with the model's KV shape, dtype and device."""
        if self._kv_template is None:
            layers = [DynamicLayer() for _ in range(self._num_layers())]
            with torch.inference_mode():
                self.model(
                    input_ids=torch.zeros((1, 1), dtype=torch.long, device=self.device),
                    past_key_values=Cache(layers=list(layers)),
                    use_cache=True,
                )
            self._kv_template = [
                (layer.keys[:, :, :0].clone(), layer.values[:, :, :0].clone())
                for layer in layers
                if layer.keys is not None and layer.values is not None
            ]
        return self._kv_template

    def _num_layers(self) -> int:
        config: Any = self.model.config
        if hasattr(config, "get_text_config"):
            config = config.get_text_config(decoder=True)
        return int(config.num_hidden_layers)

    def _prefill(self, hits: list[PrefixHit | None], seqs: list[Sequence]) -> _Rows | None:
        """Prefill the rows' suffixes on top of their cached prefixes; sample first tokens.

        Columns [0, P) hold each row's cached prefix, right-aligned; columns [P, P + S) its
        suffix, left-padded; masked columns and explicit position ids make the gaps invisible.
        """
        offsets = [hit.length if hit is not None else 0 for hit in hits]
        suffixes = [s.prompt_ids[o:] for s, o in zip(seqs, offsets, strict=True)]
        top = max(offsets)
        width = max(len(s) for s in suffixes)
        length = top + width
        n = len(seqs)
        like = next((hit.entry.kv for hit in hits if hit is not None), None)
        keys, values = self._empty_kv(n, length + _headroom(seqs), like=like)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, keys[0].shape[2]), dtype=torch.long)
        positions = torch.zeros((n, width), dtype=torch.long)
        for row, (hit, offset, suffix) in enumerate(zip(hits, offsets, suffixes, strict=True)):
            if hit is not None:
                for (k, v), kb, vb in zip(hit.entry.kv, keys, values, strict=True):
                    kb[row, :, top - offset : top].copy_(k[0, :, :offset])
                    vb[row, :, top - offset : top].copy_(v[0, :, :offset])
                mask[row, top - offset : top] = 1
            pad = width - len(suffix)
            input_ids[row, pad:] = torch.tensor(suffix, dtype=torch.long)
            mask[row, top + pad : length] = 1
            positions[row, :] = offset
            positions[row, pad:] = torch.arange(offset, offset + len(suffix))
        self.stats.prefix_tokens_reused += sum(offsets)
        mask = mask.to(self.device)
        out = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask[:, :length],
            position_ids=positions.to(self.device),
            past_key_values=_cache(keys, values, top),
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.prefill_tokens += sum(len(s) for s in suffixes)
        self._remember(seqs, keys, values, offsets, top, width)
        chosen = self._sample(seqs, RowSampler([s.state for s in seqs], self.eos_token_id), out)
        rows = _Rows(
            seqs,
            keys,
            values,
            mask,
            length,
            chosen,
            torch.tensor([len(s.prompt_ids) for s in seqs], dtype=torch.long, device=self.device),
        )
        return self._drop_finished(rows)

    def _remember(
        self,
        seqs: list[Sequence],
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        offsets: list[int],
        top: int,
        width: int,
    ) -> None:
        """Keep each new prompt's KV in the prefix cache, without its row's padding."""
        cache = self.prefix_cache
        if cache is None:
            return
        for row, (seq, offset) in enumerate(zip(seqs, offsets, strict=True)):
            keep = cache.storable(seq.prompt_ids)
            if keep <= offset:
                continue
            start = top + width - (len(seq.prompt_ids) - offset)  # after this row's padding
            spans = (slice(top - offset, top), slice(start, start + keep - offset))
            kv = [
                (
                    torch.cat([k[row : row + 1, :, span] for span in spans], dim=2),
                    torch.cat([v[row : row + 1, :, span] for span in spans], dim=2),
                )
                for k, v in zip(keys, values, strict=True)
            ]
            if cache.put(seq.prompt_ids[:keep], kv) is not None:
                self.stats.prefix_tokens_stored += keep

    def _sample(self, seqs: list[Sequence], sampler: RowSampler, out: Any) -> torch.Tensor:
        started = time.perf_counter()
        hooks = [s.on_token for s in seqs]
        sampler.on_token = lambda index, _row: _call(hooks[index], seqs[index])
        chosen = sampler.sample(out.logits[:, -1, :])
        self.stats.seconds_sample += time.perf_counter() - started
        return chosen

    def _decode(self) -> None:
        batch = self._batch
        assert batch is not None
        if batch.length + 1 > batch.capacity:
            batch = self._batch = self._rebuild(batch, list(range(len(batch.seqs))))
        column = batch.length
        batch.mask[:, column] = 1
        started = time.perf_counter()
        out = self.model(
            input_ids=batch.next_tokens[:, None],
            attention_mask=batch.mask[:, : column + 1],
            position_ids=batch.positions[:, None],
            past_key_values=_cache(batch.keys, batch.values, column),
            use_cache=True,
        )
        self.stats.seconds_decode += time.perf_counter() - started
        self.stats.steps += 1
        self.stats.step_rows += len(batch.seqs)
        batch.length = column + 1
        batch.positions += 1
        if self._sampler is None:
            self._sampler = RowSampler([s.state for s in batch.seqs], self.eos_token_id)
        batch.next_tokens = self._sample(batch.seqs, self._sampler, out)
        self._batch = self._drop_finished(batch)
        if self._batch is not batch:
            self._sampler = None

    # ---- rows joining and leaving ---------------------------------------------------------
    def _drop_finished(self, rows: _Rows) -> _Rows | None:
        """Finish the rows that are done; return the rest (the same object if none left)."""
        finished = [i for i, s in enumerate(rows.seqs) if s.state.finished]
        if not finished:
            return rows
        started = time.perf_counter()
        for index in finished:
            self._finish(rows.seqs[index])
        self.stats.seconds_finish += time.perf_counter() - started
        keep = [i for i, s in enumerate(rows.seqs) if not s.state.finished]
        if not keep:
            return None
        return self._rebuild(rows, keep)

    def _rebuild(self, rows: _Rows, keep: list[int]) -> _Rows:
        """Copy the kept rows into fresh buffers, dropping leading all-padding columns."""
        started = time.perf_counter()
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = rows.mask.index_select(0, index)[:, : rows.length]
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        seqs = [rows.seqs[i] for i in keep]
        length = rows.length - first
        capacity = length + _headroom(seqs)
        keys, values = self._empty_kv(
            len(keep), capacity, like=list(zip(rows.keys, rows.values, strict=True))
        )
        for source, target in ((rows.keys, keys), (rows.values, values)):
            for src, dst in zip(source, target, strict=True):
                dst[:, :, :length].copy_(src.index_select(0, index)[:, :, first : rows.length])
        new_mask = torch.zeros((len(keep), capacity), dtype=torch.long, device=self.device)
        new_mask[:, :length] = mask[:, first:]
        self.stats.seconds_batch += time.perf_counter() - started
        return _Rows(
            seqs,
            keys,
            values,
            new_mask,
            length,
            rows.next_tokens.index_select(0, index),
            rows.positions.index_select(0, index),
        )

    def _merge(self, rows: _Rows | None) -> None:
        """Add freshly prefilled rows to the running batch, right-aligning both."""
        if rows is None:
            return
        batch = self._batch
        self._sampler = None
        if batch is None:
            self._batch = rows
            return
        started = time.perf_counter()
        length = max(batch.length, rows.length)
        seqs = batch.seqs + rows.seqs
        capacity = length + _headroom(seqs)
        n = len(seqs)
        keys, values = self._empty_kv(
            n, capacity, like=list(zip(batch.keys, batch.values, strict=True))
        )
        mask = torch.zeros((n, capacity), dtype=torch.long, device=self.device)
        top = len(batch.seqs)
        for part, lo, hi in ((batch, 0, top), (rows, top, n)):
            shift = length - part.length
            for src, dst in zip(part.keys + part.values, keys + values, strict=True):
                dst[lo:hi, :, shift:length].copy_(src[:, :, : part.length])
            mask[lo:hi, shift:length] = part.mask[:, : part.length]
        self._batch = _Rows(
            seqs,
            keys,
            values,
            mask,
            length,
            torch.cat([batch.next_tokens, rows.next_tokens]),
            torch.cat([batch.positions, rows.positions]),
        )
        self.stats.seconds_batch += time.perf_counter() - started

    # ---- endings ----------------------------------------------------------------------------
    def _finish(self, seq: Sequence) -> None:
        if seq.done:
            return
        seq.done = True
        if seq.on_finish is not None:
            _call(seq.on_finish, seq)

    def _fail(self, seq: Sequence, exc: BaseException) -> None:
        if seq.done:
            return
        seq.done = True
        if seq.on_error is not None:
            with contextlib.suppress(Exception):
                seq.on_error(seq, exc)

    def _fail_running(self, exc: BaseException) -> None:
        batch, self._batch, self._sampler = self._batch, None, None
        joining, self._joining = self._joining, []
        for seq in (batch.seqs if batch is not None else []) + joining:
            self._fail(seq, exc)  # no-op for those already finished or failed

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            waiting = list(self._inbox)
            self._inbox.clear()
        self._fail_running(exc)
        for seq in waiting:
            self._fail(seq, exc)


def _call(hook: Callable[[Sequence], None] | None, seq: Sequence) -> None:
    """Run a hook; a failing hook must not take the other rows down."""
    if hook is None:
        return
    try:
        hook(seq)
    except Exception:
        seq.state.finished = True
        seq.state.finish_reason = seq.state.finish_reason or "error"
