"""The copywriter's continuous-batching scheduler and prefix cache, in-process on a real tiny
HF model (deploy/triton/models/copywriter/1/scheduler.py, prefix_cache.py): no Triton needed.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.copywriter.tiny import single_thread
from copyloop.generation.prompts import render_prompt

MODEL_CODE = Path(__file__).resolve().parents[3] / "deploy/triton/models/copywriter/1"


def _load(module: str) -> Any:
    """Import a module of the Triton model folder as part of a throwaway package."""
    package = "copywriter_model_code"
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(MODEL_CODE)]
        sys.modules[package] = pkg
    return importlib.import_module(f"{package}.{module}")


sampling = _load("sampling")
prefix_cache = _load("prefix_cache")
scheduler = _load("scheduler")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with single_thread():
        yield


@pytest.fixture(scope="module")
def lm(copywriter_tiny_model_dir: Path) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(str(copywriter_tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(copywriter_tiny_model_dir)).eval()
    return tokenizer, model


@pytest.fixture(scope="module")
def prompt_ids(lm: tuple[Any, Any]) -> list[list[int]]:
    """Rendered copy prompts: several share a template (a long common prefix), some not."""
    tokenizer, _ = lm
    briefs = [e.brief for e in build_corpus(generate_catalog(40), 24, seed=11)]
    return [
        tokenizer(render_prompt(b, tokenizer).text, add_special_tokens=False)["input_ids"]
        for b in briefs
    ]


@pytest.fixture(scope="module")
def template_ids(lm: tuple[Any, Any]) -> list[list[int]]:
    """Four prompts of one template (same locale, channel, tone): a long shared prefix."""
    tokenizer, _ = lm
    groups: dict[str, list[str]] = {}
    for example in build_corpus(generate_catalog(60, seed=7), 200, seed=21):
        text = render_prompt(example.brief, tokenizer).text
        groups.setdefault(text.split("<|user|>")[0], []).append(text)
    largest = max(groups, key=lambda system: len(groups[system]))
    group = sorted(set(groups[largest]))[:4]
    assert len(group) == 4
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in group]


def _params(**over: Any) -> Any:
    return sampling.SamplingParams(**{"temperature": 0.0, "max_tokens": 10, **over})


def _seq(ids: list[int], params: Any, log: list[tuple[str, int]] | None = None) -> Any:
    seq = scheduler.Sequence(list(ids), sampling.RowState.start(params))
    if log is not None:
        seq.on_token = lambda s: log.append(("token", id(s)))
        seq.on_finish = lambda s: log.append(("finish", id(s)))
        seq.on_error = lambda s, exc: log.append(("error", id(s)))
    return seq


def _scheduler(lm: tuple[Any, Any], cache: bool = True, max_batch: int = 64) -> Any:
    tokenizer, model = lm
    return scheduler.Scheduler(
        model,
        tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_batch=max_batch,
        prefix_cache=prefix_cache.PrefixCache() if cache else None,
    )


def _generate(lm: tuple[Any, Any], ids: list[int], n: int) -> list[int]:
    tokenizer, model = lm
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            do_sample=False,
            max_new_tokens=n,
            min_new_tokens=n,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[0, len(ids) :].tolist()


def _run_staggered(sched: Any, seqs: list[Any], steps_between: int = 2) -> None:
    """Submit one sequence at a time with decode steps in between: rows join a running batch."""
    with torch.inference_mode():
        for seq in seqs:
            sched.submit([seq])
            for _ in range(steps_between):
                sched.step()
    sched.run_until_idle()


# ---- prefix cache ---------------------------------------------------------------------------
def test_prefix_cache_serves_the_longest_block_aligned_prefix_never_the_whole_prompt() -> None:
    cache = prefix_cache.PrefixCache(block=4, min_tokens=8)
    first = list(range(30))
    assert cache.lookup(first) is None
    assert cache.storable(first) == 28  # whole blocks only
    entry = cache.put(first[:28], "kv-first")
    assert entry is not None and cache.storable(first) == 0  # already there

    other = list(range(13)) + [99] * 10  # shares 13 tokens with `first`
    hit = cache.lookup(other)
    assert hit is not None and (hit.entry.kv, hit.length) == ("kv-first", 12)
    assert cache.lookup(list(range(6)) + [7] * 10) is None  # shares under min_tokens
    assert cache.lookup([500, 501, *list(range(20))]) is None  # no common start

    same = cache.lookup(first[:28])  # the whole prompt is never served: one token to prefill
    assert same is not None and same.length == 24
    assert cache.lookup(first[:9]) is not None and cache.lookup(first[:8]) is None
    assert cache.stats.hits == 3 and cache.stats.tokens_reused == 12 + 24 + 8


def test_prefix_cache_evicts_least_recently_used_within_its_token_budget() -> None:
    cache = prefix_cache.PrefixCache(max_tokens=20, block=4, min_tokens=4)
    a, b, c = [1] * 8, [2] * 8, [3] * 8
    assert cache.put(a, "a") is not None and cache.put(b, "b") is not None
    assert cache.lookup([*a, 0]) is not None  # a is now the most recently used
    assert cache.put(c, "c") is not None  # 24 tokens > 20: b goes
    assert cache.lookup([*b, 0]) is None
    assert cache.lookup([*a, 0]) is not None and cache.lookup([*c, 0]) is not None
    assert cache.cached_tokens == 16 and len(cache) == 2
    assert cache.storable([4] * 40) == 0  # over the whole budget: never kept
    assert cache.put([4] * 40, "too big") is None and cache.cached_tokens == 16
    assert cache.put([5] * 7, "unaligned") is None


# ---- scheduler ------------------------------------------------------------------------------
@pytest.mark.parametrize("cache", [False, True])
def test_greedy_rows_joining_a_running_batch_equal_generate(
    lm: tuple[Any, Any], prompt_ids: list[list[int]], template_ids: list[list[int]], cache: bool
) -> None:
    # Other templates, one template's prompts (a shared prefix), and repeats (whole-prompt hits).
    chosen = prompt_ids[:4] + template_ids + prompt_ids[:1] + template_ids[:1]
    expected = [_generate(lm, ids, 10) for ids in chosen]
    sched = _scheduler(lm, cache=cache)
    seqs = [_seq(ids, _params(max_tokens=10, ignore_eos=True)) for ids in chosen]
    _run_staggered(sched, seqs)
    assert [s.state.token_ids for s in seqs] == expected
    assert all(s.state.finish_reason == sampling.FINISH_LENGTH for s in seqs)
    assert sched.pending == 0
    if cache:  # shared template prefixes were prefilled once and reused
        assert sched.stats.prefix_tokens_reused >= 32 * 3
        total = sum(len(ids) for ids in chosen)
        assert sched.stats.prefill_tokens + sched.stats.prefix_tokens_reused == total
    else:
        assert sched.stats.prefill_tokens == sum(len(ids) for ids in chosen)


def test_seeded_rows_draw_the_same_tokens_alone_or_batched(
    lm: tuple[Any, Any], prompt_ids: list[list[int]]
) -> None:
    params = [
        _params(temperature=1.0, seed=7, max_tokens=12),
        _params(temperature=0.9, top_k=20, seed=8, max_tokens=9),
        _params(temperature=1.2, top_p=0.8, seed=9, max_tokens=14),
        _params(temperature=1.0, seed=10, max_tokens=12, frequency_penalty=1.5),
    ]
    alone = []
    for ids, p in zip(prompt_ids, params, strict=False):
        sched = _scheduler(lm, cache=False)
        seq = _seq(ids, p)
        sched.submit([seq])
        sched.run_until_idle()
        alone.append(seq.state)
    sched = _scheduler(lm)
    batched = [_seq(ids, p) for ids, p in zip(prompt_ids, params, strict=False)]
    others = [_seq(ids, _params(temperature=1.0, max_tokens=20)) for ids in prompt_ids[:10]]
    sched.submit(others[:3])
    _run_staggered(sched, batched[:2] + others[3:] + batched[2:], steps_between=3)
    for one, many in zip(alone, batched, strict=True):
        assert many.state.token_ids == one.token_ids
        assert many.state.cumulative_logprob == pytest.approx(one.cumulative_logprob, abs=1e-3)
        assert many.state.finish_reason == one.finish_reason


def test_rows_leave_when_finished_and_hooks_run_once(
    lm: tuple[Any, Any], prompt_ids: list[list[int]]
) -> None:
    log: list[tuple[str, int]] = []
    lengths = [1, 3, 7, 12]
    seqs = [
        _seq(ids, _params(max_tokens=n, ignore_eos=True), log)
        for ids, n in zip(prompt_ids, lengths, strict=False)
    ]
    sched = _scheduler(lm)
    sched.submit(seqs)
    sched.run_until_idle()
    assert [len(s.state.token_ids) for s in seqs] == lengths
    for seq, n in zip(seqs, lengths, strict=True):
        events = [kind for kind, who in log if who == id(seq)]
        assert events == ["token"] * n + ["finish"]
    # The longest row ran alone at the end: the batch shrank as rows left.
    assert sched.stats.step_rows == sum(n - 1 for n in lengths)


def test_a_cancelled_row_leaves_and_the_others_finish(
    lm: tuple[Any, Any], prompt_ids: list[list[int]]
) -> None:
    def cancel_at_4(seq: Any) -> None:
        if len(seq.state.token_ids) == 4:
            seq.state.finished, seq.state.finish_reason = True, "cancelled"

    doomed = _seq(prompt_ids[0], _params(max_tokens=30, ignore_eos=True))
    doomed.on_token = cancel_at_4
    kept = [_seq(ids, _params(max_tokens=15, ignore_eos=True)) for ids in prompt_ids[1:3]]
    sched = _scheduler(lm)
    sched.submit([doomed, *kept])
    sched.run_until_idle()
    assert (len(doomed.state.token_ids), doomed.state.finish_reason) == (4, "cancelled")
    assert [s.state.token_ids for s in kept] == [_generate(lm, s.prompt_ids, 15) for s in kept]


def test_a_failing_prefill_fails_only_its_rows(
    lm: tuple[Any, Any], prompt_ids: list[list[int]]
) -> None:
    _tokenizer, model = lm
    log: list[tuple[str, int]] = []
    good = _seq(prompt_ids[0], _params(max_tokens=8, ignore_eos=True), log)
    bad = _seq([model.config.vocab_size + 5] * 4, _params(max_tokens=8), log)  # no such token
    sched = _scheduler(lm, cache=False)
    with torch.inference_mode():
        sched.submit([good])
        sched.step()
        sched.submit([bad])
        sched.step()
    sched.run_until_idle()
    assert ("error", id(bad)) in log and ("finish", id(bad)) not in log
    assert good.state.token_ids == _generate(lm, prompt_ids[0], 8)
    assert ("finish", id(good)) in log


def test_stop_fails_unfinished_sequences_and_refuses_new_ones(
    lm: tuple[Any, Any], prompt_ids: list[list[int]]
) -> None:
    errors: list[BaseException] = []
    started = threading.Event()
    sched = _scheduler(lm, max_batch=2)
    seqs = [_seq(ids, _params(max_tokens=300, ignore_eos=True), None) for ids in prompt_ids[:4]]
    for seq in seqs:
        seq.on_token = lambda s: started.set()
        seq.on_error = lambda s, exc: errors.append(exc)
    sched.start()
    sched.submit(seqs)
    assert started.wait(60)
    sched.stop(timeout_s=60)
    assert sched._thread is not None and not sched._thread.is_alive()
    # Two were running, two still waiting (max_batch=2): all four hear of the shutdown.
    assert len(errors) == 4
    assert all(isinstance(e, scheduler.SchedulerStopped) for e in errors)
    late = _seq(prompt_ids[5], _params(), None)
    late.on_error = lambda s, exc: errors.append(exc)
    sched.submit([late])
    assert len(errors) == 5 and sched.pending == 0
