"""The copywriter on a REAL local Triton server: batching, sampling, streaming, errors, stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.copywriter.tiny import single_thread
from copyloop.generation.llm_client import (
    LLMBadRequestError,
    LLMOutput,
    LLMTimeoutError,
    LLMUnavailableError,
    SamplingParams,
    TritonLLMClient,
)
from copyloop.generation.prompts import render_prompt
from copyloop.generation.triton_local import LocalTriton, TritonStartError

pytestmark = pytest.mark.triton

BLOCKER_PROMPT = "<|user|>\nhi\n<|assistant|>\n"


@pytest.fixture(scope="module")
def prompts(copywriter_tiny_model_dir: Path) -> list[str]:
    tokenizer = AutoTokenizer.from_pretrained(str(copywriter_tiny_model_dir))
    briefs = [e.brief for e in build_corpus(generate_catalog(16), 6, seed=11)]
    return [render_prompt(b, tokenizer).text for b in briefs]


@pytest.fixture
async def client(local_triton: LocalTriton) -> AsyncIterator[TritonLLMClient]:
    llm = TritonLLMClient(local_triton.grpc_url, default_timeout_s=120)
    yield llm
    await llm.close()


def _counts(triton: LocalTriton) -> tuple[int, int, dict[int, int]]:
    stats = triton.model_statistics()["model_stats"][0]
    batches = {
        int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", [])
    }
    return int(stats["inference_count"]), int(stats["execution_count"]), batches


async def _settled_counts(triton: LocalTriton) -> tuple[int, int, dict[int, int]]:
    """Statistics once earlier tests' executions have all been recorded (two equal reads)."""
    previous = _counts(triton)
    for _ in range(50):
        await asyncio.sleep(0.2)
        current = _counts(triton)
        if current == previous:
            return current
        previous = current
    return previous


async def _counts_after(triton: LocalTriton, inferences: int) -> tuple[int, int, dict[int, int]]:
    """Statistics once `inferences` requests are recorded.

    A decoupled model sends its final responses before execute() returns, and Triton
    records the execution only then, so the client can be a moment ahead of the stats.
    """
    for _ in range(200):
        counts = _counts(triton)
        if counts[0] >= inferences:
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError(f"statistics never reached {inferences} inferences: {counts}")


async def _while_busy(client: TritonLLMClient, make_calls) -> list:
    """Run `make_calls()` while a long request occupies the model instance.

    Everything sent meanwhile waits in Triton's dynamic batcher and runs as ONE execute()
    when the long request finishes, which makes batch composition deterministic.
    """
    started = asyncio.Event()

    async def blocker() -> None:
        params = SamplingParams(temperature=0, max_tokens=300, ignore_eos=True)
        async for _ in client.stream(BLOCKER_PROMPT, params):
            started.set()

    blocking = asyncio.create_task(blocker())
    await asyncio.wait_for(started.wait(), timeout=60)
    results = await asyncio.gather(*make_calls(), return_exceptions=True)
    await blocking
    return list(results)


async def test_client_sees_a_ready_batched_model(client: TritonLLMClient) -> None:
    assert await client.is_ready()
    shape = await client._model_shape(10)
    assert shape.input_shape == (1, 1)  # max_batch_size > 0
    assert {"text_input", "sampling_parameters", "stream"} <= shape.input_names


async def test_concurrent_requests_run_in_one_execute(
    client: TritonLLMClient, local_triton: LocalTriton, prompts: list[str]
) -> None:
    inferences0, executions0, batches0 = await _settled_counts(local_triton)
    params = SamplingParams(temperature=0.7, seed=1, max_tokens=12)
    results = await _while_busy(client, lambda: [client.generate(p, params) for p in prompts])
    assert all(isinstance(r, LLMOutput) for r in results), results
    inferences1, executions1, batches1 = await _counts_after(
        local_triton, inferences0 + len(prompts) + 1
    )
    assert inferences1 - inferences0 == len(prompts) + 1  # + the blocker
    assert executions1 - executions0 == 2  # the blocker alone, then all six together
    assert batches1.get(len(prompts), 0) - batches0.get(len(prompts), 0) == 1


async def test_same_seed_same_text_whatever_the_batch(
    client: TritonLLMClient, prompts: list[str]
) -> None:
    def seeded(seed: int) -> SamplingParams:
        return SamplingParams(temperature=1.0, top_p=1.0, seed=seed, max_tokens=16)

    alone = await client.generate(prompts[0], seeded(42))
    again = await client.generate(prompts[0], seeded(42))
    batched = await _while_busy(
        client,
        lambda: [
            client.generate(prompts[0], seeded(42)),
            client.generate(prompts[1], seeded(42)),
            client.generate(prompts[0], seeded(43)),
            client.generate(prompts[0], seeded(44)),
        ],
    )
    assert alone.text == again.text == batched[0].text
    assert alone.cumulative_logprob == pytest.approx(batched[0].cumulative_logprob, abs=1e-3)
    assert {batched[2].text, batched[3].text} != {alone.text}  # other seeds, other draws


async def test_greedy_is_deterministic_and_matches_in_process_generate(
    client: TritonLLMClient, prompts: list[str], copywriter_tiny_model_dir: Path
) -> None:
    greedy = SamplingParams(temperature=0.0, max_tokens=10)
    first = await client.generate(prompts[2], greedy)
    second = await client.generate(prompts[2], greedy)
    assert first.text == second.text
    tokenizer = AutoTokenizer.from_pretrained(str(copywriter_tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(copywriter_tiny_model_dir)).eval()
    ids = tokenizer(prompts[2], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad(), single_thread():  # the server runs one thread too
        out = model.generate(
            **ids, do_sample=False, max_new_tokens=10, pad_token_id=tokenizer.pad_token_id
        )
    expected = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert first.text == expected


async def test_max_tokens_caps_the_output(client: TritonLLMClient, prompts: list[str]) -> None:
    capped = await client.generate(
        prompts[3], SamplingParams(seed=5, max_tokens=5, ignore_eos=True)
    )
    assert (capped.num_output_tokens, capped.finish_reason) == (5, "length")
    short = await client.generate(prompts[3], SamplingParams(seed=5, max_tokens=2))
    assert 1 <= short.num_output_tokens <= 2
    assert short.finish_reason in ("length", "stop")
    assert capped.cumulative_logprob is not None and capped.cumulative_logprob < 0


async def test_stream_yields_deltas_that_add_up_to_the_text(
    client: TritonLLMClient, prompts: list[str]
) -> None:
    params = SamplingParams(temperature=0.9, seed=7, max_tokens=24, ignore_eos=True)
    summaries: list[LLMOutput] = []
    deltas = [d async for d in client.stream(prompts[4], params, on_complete=summaries.append)]
    final = await client.generate(prompts[4], params)
    assert len(deltas) >= 3
    assert "".join(deltas) == final.text
    assert summaries[0].num_output_tokens == final.num_output_tokens == 24
    assert summaries[0].finish_reason == "length"


async def test_bad_sampling_parameters_fail_only_their_request(
    client: TritonLLMClient, local_triton: LocalTriton, prompts: list[str]
) -> None:
    inferences0, executions0, _ = await _settled_counts(local_triton)
    good = SamplingParams(seed=3, max_tokens=6)
    results = await _while_busy(
        client,
        lambda: [
            client.generate(prompts[0], good),
            client.generate(prompts[1], '{"temperature": 0.7, "max_tokens": '),  # broken JSON
            client.generate(prompts[2], {"max_tokens": 0}),  # valid JSON, invalid value
            client.generate(prompts[3], good),
        ],
    )
    _, executions1, _ = await _counts_after(local_triton, inferences0 + 5)
    assert executions1 - executions0 == 2  # the four requests shared one execute()
    assert isinstance(results[0], LLMOutput) and isinstance(results[3], LLMOutput)
    assert isinstance(results[1], LLMBadRequestError) and "JSON" in str(results[1])
    assert isinstance(results[2], LLMBadRequestError) and "max_tokens" in str(results[2])


async def test_deadline_is_honoured(client: TritonLLMClient) -> None:
    params = SamplingParams(temperature=0, max_tokens=300, ignore_eos=True)
    with pytest.raises(LLMTimeoutError):
        await client.generate(BLOCKER_PROMPT, params, timeout_s=0.05)


async def test_stop_really_stops_the_server(copywriter_tiny_model_dir: Path) -> None:
    triton = LocalTriton(
        copywriter_tiny_model_dir, startup_timeout_s=240, env={"COPYWRITER_TORCH_THREADS": "1"}
    )
    async with triton:
        pid = triton.pid
        llm = TritonLLMClient(triton.grpc_url, default_timeout_s=30)
        assert (
            await llm.generate("<|user|>\nhi\n<|assistant|>\n", SamplingParams(max_tokens=3))
        ).num_output_tokens >= 1
    assert not triton.is_running()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert not await llm.is_ready()
    with pytest.raises(LLMUnavailableError):
        await llm.generate("hello", SamplingParams(max_tokens=3))
    await llm.close()


def test_start_fails_fast_with_the_server_log(tmp_path: Path) -> None:
    with pytest.raises(TritonStartError, match="not a Hugging Face model directory"):
        LocalTriton(tmp_path / "missing").start()
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    triton = LocalTriton(broken, startup_timeout_s=120)
    with pytest.raises(TritonStartError) as info:
        triton.start()
    assert "copywriter" in str(info.value)  # the log tail names the failing model
    assert not triton.is_running()
    assert not any(Path(f"/proc/{pid}").exists() for pid in [triton.pid] if pid)
    assert os.path.isfile(str(triton.log_path))
