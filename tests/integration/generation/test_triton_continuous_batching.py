"""The copywriter's continuous batching and prefix cache on a REAL local Triton server.

Requests that share a prompt template (a long common token prefix, computed once by the
prefix cache) and run concurrently in one decode loop must get exactly what they get alone;
a short request must not wait for a long one that started before it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.llm_client import (
    LLMOutput,
    LLMTimeoutError,
    SamplingParams,
    TritonLLMClient,
)
from copyloop.generation.prompts import render_prompt
from copyloop.generation.triton_local import LocalTriton

pytestmark = pytest.mark.triton


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@pytest.fixture(scope="module")
def shared_prompts(copywriter_tiny_model_dir: Path) -> list[str]:
    """Five prompts of one template (same locale, channel and tone): a long shared prefix."""
    tokenizer = AutoTokenizer.from_pretrained(str(copywriter_tiny_model_dir))
    by_template: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for example in build_corpus(generate_catalog(60, seed=7), 300, seed=21):
        text = render_prompt(example.brief, tokenizer).text
        by_template[(text.split("<|user|>")[0],)].append(text)
    group = max(by_template.values(), key=len)[:5]
    assert len(group) == 5
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in group]
    assert min(_common_prefix(ids[0], other) for other in ids[1:]) >= 32  # cacheable
    assert len(set(group)) == 5
    return group


@pytest.fixture
async def client(local_triton: LocalTriton) -> AsyncIterator[TritonLLMClient]:
    llm = TritonLLMClient(local_triton.grpc_url, default_timeout_s=120)
    yield llm
    await llm.close()


async def _streamed(client: TritonLLMClient, prompt: str, params: SamplingParams) -> LLMOutput:
    summaries: list[LLMOutput] = []
    deltas = [d async for d in client.stream(prompt, params, on_complete=summaries.append)]
    assert "".join(deltas) == summaries[0].text
    return summaries[0]


async def test_concurrent_shared_prefix_requests_match_each_alone(
    client: TritonLLMClient, shared_prompts: list[str]
) -> None:
    params = [
        SamplingParams(temperature=0.0, max_tokens=12),
        SamplingParams(temperature=1.0, seed=101, max_tokens=16),
        SamplingParams(temperature=0.8, top_k=30, seed=102, max_tokens=10, ignore_eos=True),
        SamplingParams(temperature=1.0, top_p=0.9, seed=103, max_tokens=14),
        SamplingParams(temperature=1.0, seed=104, max_tokens=16, frequency_penalty=1.0),
    ]
    pairs = list(zip(shared_prompts, params, strict=True))
    alone = [await client.generate(p, q) for p, q in pairs]
    for _round in range(2):  # the second round starts from the cached prefix
        together = await asyncio.gather(
            *(
                _streamed(client, p, q) if i % 2 else client.generate(p, q)
                for i, (p, q) in enumerate(pairs)
            )
        )
        for one, many in zip(alone, together, strict=True):
            assert many.text == one.text
            assert many.num_output_tokens == one.num_output_tokens
            assert many.finish_reason == one.finish_reason
            assert many.cumulative_logprob == pytest.approx(one.cumulative_logprob, abs=1e-3)


async def test_a_short_request_does_not_wait_for_a_long_one(
    client: TritonLLMClient, shared_prompts: list[str]
) -> None:
    long_done = asyncio.Event()
    started = asyncio.Event()
    long_tokens: list[int] = []

    async def long_request() -> None:
        params = SamplingParams(temperature=0, max_tokens=250, ignore_eos=True)
        async for _ in client.stream(
            shared_prompts[0], params, on_complete=lambda o: long_tokens.append(o.num_output_tokens)
        ):
            started.set()
        long_done.set()

    running = asyncio.create_task(long_request())
    await asyncio.wait_for(started.wait(), timeout=60)
    short = await client.generate(shared_prompts[1], SamplingParams(temperature=0, max_tokens=4))
    # It joined the running batch and left it again while the long request kept going.
    assert short.num_output_tokens >= 1
    assert not long_done.is_set()
    await running
    assert long_tokens == [250]


async def test_a_request_cancelled_mid_batch_leaves_the_others_intact(
    client: TritonLLMClient, shared_prompts: list[str]
) -> None:
    params = SamplingParams(temperature=1.0, seed=55, max_tokens=40, ignore_eos=True)
    alone = await client.generate(shared_prompts[2], params)
    doomed = SamplingParams(temperature=0, max_tokens=450, ignore_eos=True)
    results = await asyncio.gather(
        client.generate(shared_prompts[3], doomed, timeout_s=0.1),
        client.generate(shared_prompts[2], params),
        return_exceptions=True,
    )
    assert isinstance(results[0], LLMTimeoutError)
    assert isinstance(results[1], LLMOutput)
    assert (results[1].text, results[1].num_output_tokens) == (alone.text, 40)
    # The server dropped the cancelled row: a later request is served normally.
    again = await client.generate(shared_prompts[2], params)
    assert again.text == alone.text
