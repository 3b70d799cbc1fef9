"""Generation throughput through a real local Triton vs. sequential in-process generate().

For concurrency 1, 8 and 32 (closed loop: that many clients each sending its next request
as soon as the previous one returns), measures requests/s and generated tokens/s through
Triton (dynamic batching: concurrent requests share one batched generate()), and compares
with un-batched `model.generate()` called sequentially in-process on the same prompts.
Every request generates exactly --max-tokens tokens (ignore_eos), so the work is fixed.

    python bench/generation_throughput.py --model-dir var/models/copywriter-demo

Train the demo model first: `python -m copyloop.generation.copywriter train`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.llm_client import SamplingParams, TritonLLMClient
from copyloop.generation.prompts import render_prompt
from copyloop.generation.triton_local import LocalTriton


@dataclass
class Row:
    mode: str
    concurrency: int
    requests: int
    seconds: float
    requests_per_s: float
    tokens_per_s: float
    p50_latency_s: float
    mean_batch_size: float
    speedup_vs_sequential: float = 0.0


def build_prompts(model_dir: Path, n: int, seed: int) -> list[str]:
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    briefs = [e.brief for e in build_corpus(generate_catalog(240, seed=101), n, seed=seed)]
    return [render_prompt(b, tokenizer).text for b in briefs]


def run_sequential(model_dir: Path, prompts: list[str], max_tokens: int) -> Row:
    """The baseline: one request at a time, un-batched, in this process."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    latencies: list[float] = []
    tokens = 0

    def one(prompt: str) -> int:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(
                **ids,
                do_sample=True,
                temperature=0.8,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        return int(out.shape[1] - ids["input_ids"].shape[1])

    one(prompts[0])  # warm-up
    started = time.perf_counter()
    for prompt in prompts:
        t0 = time.perf_counter()
        tokens += one(prompt)
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    return Row(
        "sequential generate()",
        1,
        len(prompts),
        seconds,
        len(prompts) / seconds,
        tokens / seconds,
        statistics.median(latencies),
        1.0,
    )


def _stats(triton: LocalTriton) -> tuple[int, int]:
    stats = triton.model_statistics()["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


async def run_triton(
    triton: LocalTriton, prompts: list[str], concurrency: int, max_tokens: int
) -> Row:
    client = TritonLLMClient(triton.grpc_url, default_timeout_s=600)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for index, prompt in enumerate(prompts):
        queue.put_nowait((index, prompt))
    latencies: list[float] = []
    tokens = 0

    async def worker() -> None:
        nonlocal tokens
        while not queue.empty():
            index, prompt = queue.get_nowait()
            params = SamplingParams(
                temperature=0.8, top_p=1.0, seed=index, max_tokens=max_tokens, ignore_eos=True
            )
            output = await client.generate(prompt, params)
            latencies.append(output.latency_s)
            tokens += output.num_output_tokens

    # Warm-up: one full round at this concurrency, so the measured part is steady state
    # (closed-loop clients take a few rounds to fall into step with the batches).
    warm = SamplingParams(temperature=0.8, max_tokens=max_tokens, ignore_eos=True)
    await asyncio.gather(*(client.generate(p, warm) for p in prompts[:concurrency]))
    inferences0, executions0 = _stats(triton)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    inferences1, executions1 = _stats(triton)
    await client.close()
    return Row(
        "triton",
        concurrency,
        len(prompts),
        seconds,
        len(prompts) / seconds,
        tokens / seconds,
        statistics.median(latencies),
        (inferences1 - inferences0) / max(1, executions1 - executions0),
    )


def print_table(rows: list[Row], max_tokens: int) -> None:
    print(
        f"\ngeneration throughput, max_tokens={max_tokens} (ignore_eos), "
        f"torch threads={torch.get_num_threads()}"
    )
    header = (
        f"{'mode':<22} {'conc':>4} {'reqs':>5} {'req/s':>8} {'tok/s':>9} "
        f"{'p50 lat s':>9} {'batch':>6} {'x seq':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.mode:<22} {r.concurrency:>4} {r.requests:>5} {r.requests_per_s:>8.2f} "
            f"{r.tokens_per_s:>9.1f} {r.p50_latency_s:>9.3f} {r.mean_batch_size:>6.1f} "
            f"{r.speedup_vs_sequential:>6.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/copywriter-demo"))
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--requests",
        type=int,
        default=192,
        help="requests per Triton concurrency level (at least the concurrency)",
    )
    parser.add_argument("--sequential-requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        print(
            f"no model in {args.model_dir}; run `python -m copyloop.generation.copywriter "
            f"train --out {args.model_dir}` first",
            file=sys.stderr,
        )
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    prompts = build_prompts(args.model_dir, max(args.requests, max(levels)), args.seed)

    baseline = run_sequential(args.model_dir, prompts[: args.sequential_requests], args.max_tokens)
    baseline.speedup_vs_sequential = 1.0
    rows = [baseline]
    with LocalTriton(args.model_dir) as triton:
        for level in levels:
            row = asyncio.run(
                run_triton(triton, prompts[: max(args.requests, level)], level, args.max_tokens)
            )
            row.speedup_vs_sequential = row.requests_per_s / baseline.requests_per_s
            rows.append(row)
            print(f"  concurrency {level}: {row.requests_per_s:.2f} req/s", flush=True)
    print_table(rows, args.max_tokens)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
