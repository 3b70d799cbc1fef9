"""The predicted effect of a text, from PredictionService: how a cold-start shopper would
respond to this copy for this item. Optional: ReviewCopy answers without it and says so."""

from __future__ import annotations

import grpc

from copyloop.common.downstream import Metadata, describe, insecure_channel
from copyloop.v1 import common_pb2, generation_pb2, prediction_pb2, prediction_pb2_grpc


class CopyEffectClient:
    def __init__(self, address: str) -> None:
        self._channel: grpc.aio.Channel | None = insecure_channel(address) if address else None
        self._stub = (
            prediction_pb2_grpc.PredictionServiceStub(self._channel) if self._channel else None
        )

    async def predict(
        self,
        item: common_pb2.Item,
        text: str,
        channel: common_pb2.Channel.ValueType,
        locale: str,
        metadata: Metadata,
        timeout_s: float,
    ) -> tuple[generation_pb2.CopyEffect | None, str]:
        """(effect, "") or (None, why it is missing) for the reply's degradations."""
        if self._stub is None:
            return None, "prediction: not configured"
        request = prediction_pb2.ScoreRequest(
            user_id="review:cold-start",
            profile=common_pb2.UserProfile(user_id="review:cold-start", cold_start=True),
            context=common_pb2.Context(channel=channel, locale=locale),
            candidates=[
                prediction_pb2.ScoreCandidate(item=item, creative_id="review", copy_text=text)
            ],
        )
        try:
            reply = await self._stub.Score(request, metadata=metadata, timeout=timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            return None, f"prediction: {describe(exc)}"
        if not reply.scores:
            return None, "prediction: no score"
        score = reply.scores[0]
        return (
            generation_pb2.CopyEffect(
                p_ctr=score.p_ctr,
                copy_quality=score.copy_quality,
                model_version=reply.model_version,
            ),
            "",
        )

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
