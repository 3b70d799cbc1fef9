"""How many times the model is asked before template copy fills a variant: a Generate call (a
shopper may be waiting) gets `regeneration_rounds` extra rounds, a pre-generation unit (nobody
waits) `pregeneration_rounds`; each round asks `oversample` completions per missing variant.
The LLM is a fake here: a model that keeps failing the checks is not a fault Triton can be
made to show on demand."""

from __future__ import annotations

from typing import Any, cast

import pytest

from copyloop.generation.domain import GenerationDomain
from copyloop.generation.llm_client import LLMOutput, TritonLLMClient
from copyloop.generation.messages import generate_request
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.store import CreativeStore
from copyloop.v1 import common_pb2, generation_pb2

ITEM = common_pb2.Item(
    item_id="lamp-1",
    title="Aurora Desk Lamp",
    brand="Lumo",
    category_path=["Home", "Lighting"],
    price=29.99,
    selling_points=["warm dimmable light"],
)
UNREADABLE = "Th sime {title} {title} {title}."  # fails several checks, every time
GOOD = "Grab {title}! Now {price}."


class _Model:
    """Answers UNREADABLE for the first `bad_calls` completions, then GOOD."""

    def __init__(self, bad_calls: int) -> None:
        self.bad_calls = bad_calls
        self.calls = 0

    async def generate(self, prompt: str, sampling: Any, **_: Any) -> LLMOutput:
        self.calls += 1
        text = UNREADABLE if self.calls <= self.bad_calls else GOOD
        return LLMOutput(text, "stop", -3.0, 8, 0.01)


async def _generate(model: _Model, offline: bool) -> tuple[str, int]:
    settings = GenerationSettings(
        port=0, database_url="sqlite://", regeneration_rounds=2, pregeneration_rounds=6
    )
    domain = GenerationDomain(cast(CreativeStore, None), settings, cast(TritonLLMClient, model))

    async def no_pool(request: Any) -> list[str]:
        return []

    domain._existing_texts = no_pool  # type: ignore[method-assign]
    try:
        request = generate_request(
            generation_pb2.GenerateRequest(
                item=ITEM, channel=common_pb2.CHANNEL_PUSH, locale="en-US", variant_count=1
            )
        )
        result = await domain.generate(request, offline=offline)
        return result.variants[0].source, model.calls
    finally:
        domain._runner.close()


@pytest.mark.parametrize(("offline", "rounds"), [(False, 3), (True, 7)])
async def test_a_model_that_never_passes_is_asked_every_round_then_template_copy_fills(
    offline: bool, rounds: int
) -> None:
    source, calls = await _generate(_Model(bad_calls=10_000), offline)
    assert calls == rounds * 5  # oversample 5 per missing variant per round
    assert source == "template_fallback"


async def test_pregeneration_keeps_asking_where_a_generate_call_gives_up() -> None:
    # 20 failing completions: four rounds of five. A Generate call stops after three rounds
    # and falls back; pre-generation gets the model's copy (regenerated) in its fifth.
    assert await _generate(_Model(bad_calls=20), offline=False) == ("template_fallback", 15)
    source, calls = await _generate(_Model(bad_calls=20), offline=True)
    assert (source, calls) == ("model_regenerated", 25)
