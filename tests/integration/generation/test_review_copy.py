"""ReviewCopy over real gRPC: people's own lines get the checks generated copy gets (claims
against the item and promotion, sentiment, compliance), with spans; bad input is
INVALID_ARGUMENT; the predicted effect comes from a real PredictionService when one is
configured and its absence is listed, never an error."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tests.support.grpc_helpers import API_KEYS, auth, field_violations

from copyloop.generation.main import start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.prediction.main import start_prediction_service
from copyloop.prediction.settings import PredictionSettings
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

G = generation_pb2
LAMP = common_pb2.Item(
    item_id="lamp-1",
    title="Cosy Reading Lamp",
    brand="Glowlab",
    category_path=["Home", "Lighting"],
    price=24.99,
    currency_code="USD",
    selling_points=["3 brightness levels", "USB-C charging"],
)
BOOK = common_pb2.Item(
    item_id="book-1", title="睡前故事绘本", brand="小熊", price=39.0, currency_code="CNY"
)
Stub = generation_pb2_grpc.GenerationServiceStub
Generation = Callable[[str], AbstractAsyncContextManager[Stub]]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'generation.db'}"


@pytest.fixture
def generation(sqlite_url: str) -> Generation:
    @asynccontextmanager
    async def start(prediction_addr: str = "") -> AsyncIterator[Stub]:
        service = await start_generation_service(
            GenerationSettings(
                port=0, database_url=sqlite_url, api_keys=API_KEYS, prediction_addr=prediction_addr
            )
        )
        channel = grpc.aio.insecure_channel(service.address)
        try:
            yield generation_pb2_grpc.GenerationServiceStub(channel)
        finally:
            await channel.close()
            await service.stop(0)

    return start


def review(text: str, item: common_pb2.Item = LAMP, locale: str = "en-US", **over: object):
    fields: dict[str, object] = dict(
        item=item, channel=common_pb2.CHANNEL_PUSH, locale=locale, text=text
    )
    fields.update(over)
    return G.ReviewCopyRequest(**fields)  # type: ignore[arg-type]


async def test_true_copy_passes_and_false_claims_are_named_with_their_spans(
    generation: Generation,
) -> None:
    async with generation("") as stub:
        good = await stub.ReviewCopy(
            review("Cosy Reading Lamp by Glowlab: 3 brightness levels, now $24.99."),
            metadata=auth(),
        )
        assert good.passed, [f.message for f in good.findings]
        assert good.sentiment > -0.3 and 0 < good.coverage.score <= 1
        assert good.degradations == ["prediction: not configured"]
        assert not good.HasField("predicted_effect")

        text = "Cosy Reading Lamp, now 90% off, only $1.99!"
        bad = await stub.ReviewCopy(review(text), metadata=auth())
        assert not bad.passed
        claims = {f.claim_kind: f for f in bad.findings if f.check == "claim"}
        assert {"discount", "price"} <= set(claims), [f.message for f in bad.findings]
        price = claims["price"]
        assert "1.99" in text[price.span.start : price.span.end]
        assert "24.99" in price.message


async def test_chinese_discount_without_a_promotion_fails_and_passes_with_one(
    generation: Generation,
) -> None:
    async with generation("") as stub:
        text = "限时3折，仅需19元"
        bad = await stub.ReviewCopy(review(text, BOOK, "zh-CN"), metadata=auth())
        assert not bad.passed
        assert {f.claim_kind for f in bad.findings} >= {"discount", "price"}

        end = Timestamp(seconds=4_102_444_800)  # 2100-01-01
        promo = G.Promotion(discount_percent=30, end_time=end)
        item = common_pb2.Item()
        item.CopyFrom(BOOK)
        item.list_price, item.price = 39.0, 11.7
        ok = await stub.ReviewCopy(
            review("限时7折，仅需11.7元", item, "zh-CN", promotion=promo), metadata=auth()
        )
        assert ok.passed, [f.message for f in ok.findings]


async def test_copy_that_speaks_ill_of_the_product_fails_on_sentiment(
    generation: Generation,
) -> None:
    async with generation("") as stub:
        reply = await stub.ReviewCopy(
            review("Cosy Reading Lamp is awful and cheap junk"), metadata=auth()
        )
        assert not reply.passed and reply.sentiment < 0
        assert any(f.check == "sentiment" for f in reply.findings)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"item": None}, "item"),
        ({"text": ""}, "text"),
        ({"text": "x" * 2000}, "text"),
        ({"locale": "fr-FR"}, "locale"),
        ({"channel": common_pb2.CHANNEL_UNSPECIFIED}, "channel"),
        ({"promotion": G.Promotion(discount_percent=150)}, "promotion.discount_percent"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    generation: Generation, over: dict[str, object], field: str
) -> None:
    request = review("Cosy Reading Lamp, now $24.99.")
    for name, value in over.items():
        if value is None:
            request.ClearField(name)  # type: ignore[arg-type]
        elif isinstance(value, G.Promotion):
            request.promotion.CopyFrom(value)
        else:
            setattr(request, name, value)
    async with generation("") as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReviewCopy(request, metadata=auth())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(caught.value)


async def test_predicted_effect_from_a_real_prediction_service(
    generation: Generation, tmp_path: Path
) -> None:
    prediction = await start_prediction_service(
        PredictionSettings(
            port=0,
            database_url=f"sqlite:///{tmp_path / 'prediction.db'}",
            api_keys=API_KEYS,
            model_root=str(tmp_path / "models"),
            embedder="hashing",
        )
    )
    try:
        async with generation(prediction.address) as stub:
            reply = await stub.ReviewCopy(review("Cosy Reading Lamp, now $24.99."), metadata=auth())
    finally:
        await prediction.stop(0)
    assert reply.HasField("predicted_effect"), list(reply.degradations)
    assert 0 < reply.predicted_effect.p_ctr < 1
    assert reply.predicted_effect.model_version
    assert not reply.degradations


async def test_prediction_down_is_a_listed_degradation_not_an_error(
    generation: Generation,
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    async with generation(dead) as stub:
        reply = await stub.ReviewCopy(review("Cosy Reading Lamp, now $24.99."), metadata=auth())
    assert reply.passed and not reply.HasField("predicted_effect")
    assert len(reply.degradations) == 1 and reply.degradations[0].startswith("prediction: ")
