"""Per-row sampling used inside the Triton model's batched generate() (deploy/.../sampling.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SAMPLING_PATH = (
    Path(__file__).resolve().parents[4] / "deploy/triton/models/copywriter/1/sampling.py"
)


def _load_sampling():
    spec = importlib.util.spec_from_file_location("copywriter_sampling", SAMPLING_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sampling = _load_sampling()
EOS = 0


def _rows(*params):
    return [sampling.RowState.start(p) for p in params]


def test_parse_defaults_values_and_vllm_extras() -> None:
    parse = sampling.parse_sampling_parameters
    assert parse(None, 64, 512) == sampling.SamplingParams(max_tokens=64)
    assert parse(b"", 64, 512).max_tokens == 64
    parsed = parse(
        '{"temperature": "0.5", "top_p": 0.9, "top_k": 5, "seed": 7, '
        '"max_tokens": 12, "stop": ["x"]}',
        64,
        512,
    )
    assert parsed == sampling.SamplingParams(0.5, 0.9, 5, 7, 12, False)
    penalised = parse('{"presence_penalty": 0.5, "frequency_penalty": 1}', 64, 512)
    assert (penalised.presence_penalty, penalised.frequency_penalty) == (0.5, 1.0)
    assert parse('{"top_k": -1}', 64, 512).top_k == 0


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("{bad", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"temprature": 1}', "unknown"),
        ('{"temperature": -1}', "temperature"),
        ('{"top_p": 0}', "top_p"),
        ('{"max_tokens": 0}', "max_tokens"),
        ('{"max_tokens": 10000}', "max_tokens"),
        ('{"seed": "abc"}', "seed"),
        ('{"temperature": true}', "temperature"),
        ('{"frequency_penalty": 3}', "penalty"),
    ],
)
def test_parse_rejects_bad_parameters(raw: str, fragment: str) -> None:
    with pytest.raises(sampling.SamplingError, match=fragment):
        sampling.parse_sampling_parameters(raw, 64, 512)


def test_greedy_top_k_1_and_tiny_top_p_all_pick_the_argmax() -> None:
    scores = torch.tensor([[0.1, 2.0, 1.9, -1.0]]).repeat(3, 1)
    params = [
        sampling.SamplingParams(temperature=0.0, max_tokens=5),
        sampling.SamplingParams(temperature=5.0, top_k=1, seed=1, max_tokens=5),
        sampling.SamplingParams(temperature=5.0, top_p=0.01, seed=2, max_tokens=5),
    ]
    for _ in range(20):
        rows = _rows(*params)
        out = sampling.RowSampler(rows, eos_token_id=None)(torch.zeros(3, 1), scores)
        assert [r.token_ids for r in rows] == [[1], [1], [1]]
        assert torch.equal(
            torch.isfinite(out), torch.nn.functional.one_hot(torch.tensor([1, 1, 1]), 4).bool()
        )


def test_sampling_follows_softmax_of_scaled_logits_per_row() -> None:
    logits = torch.tensor([[1.0, 0.0, -1.0, -8.0]])
    n = 3000
    rows = _rows(
        *[sampling.SamplingParams(temperature=1.0, seed=i, max_tokens=1) for i in range(n)]
    )
    sampling.RowSampler(rows, eos_token_id=None)(torch.zeros(n, 1), logits.repeat(n, 1))
    counts = torch.bincount(torch.tensor([r.token_ids[0] for r in rows]), minlength=4).float()
    expected = torch.softmax(logits[0], dim=-1)
    assert torch.allclose(counts / n, expected, atol=0.03)
    # top_k=2 removes the two least likely tokens entirely.
    rows = _rows(
        *[
            sampling.SamplingParams(temperature=1.0, top_k=2, seed=i, max_tokens=1)
            for i in range(500)
        ]
    )
    sampling.RowSampler(rows, eos_token_id=None)(torch.zeros(500, 1), logits.repeat(500, 1))
    assert {r.token_ids[0] for r in rows} == {0, 1}


def test_same_seed_same_draws_different_seeds_differ() -> None:
    def run(seed: int) -> list[int]:
        rows = _rows(sampling.SamplingParams(temperature=1.0, seed=seed, max_tokens=50))
        sampler = sampling.RowSampler(rows, eos_token_id=None)
        for _ in range(30):
            sampler(torch.zeros(1, 1), torch.zeros(1, 16))
        return rows[0].token_ids

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_rows_finish_on_eos_or_their_own_max_tokens_and_ignore_eos_never_stops() -> None:
    eos_heavy = torch.tensor([[5.0, 0.0, 0.0]]).repeat(3, 1)
    rows = _rows(
        sampling.SamplingParams(temperature=0.0, max_tokens=4),
        sampling.SamplingParams(temperature=0.0, max_tokens=2, ignore_eos=True),
        sampling.SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True),
    )
    sampler = sampling.RowSampler(rows, eos_token_id=EOS)
    stop = sampling.RowsFinished(rows)
    steps = 0
    while not bool(stop(torch.zeros(3, 1, dtype=torch.long), eos_heavy).all()):
        sampler(torch.zeros(3, 1), eos_heavy)
        steps += 1
    assert steps == 3
    assert (rows[0].token_ids, rows[0].finish_reason) == ([EOS], sampling.FINISH_STOP)
    assert (len(rows[1].token_ids), rows[1].finish_reason) == (2, sampling.FINISH_LENGTH)
    assert (len(rows[2].token_ids), rows[2].finish_reason) == (3, sampling.FINISH_LENGTH)
    assert EOS not in rows[1].token_ids + rows[2].token_ids
    expected_logprob = float(torch.log_softmax(eos_heavy[0], -1)[EOS])
    assert rows[0].cumulative_logprob == pytest.approx(expected_logprob)


def test_incremental_decoder_never_splits_a_multibyte_character() -> None:
    pieces = [b"Hi ", *[bytes([b]) for b in "限时".encode()], b"!"]

    def decode(ids: list[int]) -> str:
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    decoder = sampling.IncrementalDecoder(decode)
    deltas = [decoder.delta(list(range(n))) for n in range(1, len(pieces) + 1)]
    assert all("\ufffd" not in d for d in deltas)
    assert deltas[0] == "Hi " and deltas[3] == "限" and deltas[6] == "时" and deltas[-1] == "!"
    assert "".join(deltas) == "Hi 限时!"


def test_frequency_penalty_stops_a_greedy_row_from_repeating_itself() -> None:
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    plain = _rows(sampling.SamplingParams(temperature=0.0, max_tokens=4))
    penalised = _rows(sampling.SamplingParams(temperature=0.0, max_tokens=4, frequency_penalty=2.0))
    for rows in (plain, penalised):
        sampler = sampling.RowSampler(rows, eos_token_id=None)
        for _ in range(4):
            sampler(torch.zeros(1, 1), scores)
    assert plain[0].token_ids == [0, 0, 0, 0]
    assert penalised[0].token_ids == [0, 1, 0, 2]  # 3-2=1 < 2, then 2-2=0 < 1 ...
