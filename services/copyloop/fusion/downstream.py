"""FusionService's calls to the other three services. The caller's API key travels with every
downstream call, so the tenant boundary holds end to end; each call gets its own timeout, cut
from the request's remaining budget."""

from __future__ import annotations

from copyloop.common.downstream import Metadata, describe, forwarded_metadata, insecure_channel
from copyloop.fusion import messages
from copyloop.fusion.domain import TrainRequest, TrainResult
from copyloop.v1 import generation_pb2_grpc, prediction_pb2_grpc, profile_pb2_grpc

__all__ = ["Downstream", "Metadata", "describe", "forwarded_metadata"]


class Downstream:
    def __init__(self, profile_addr: str, generation_addr: str, prediction_addr: str) -> None:
        self._channels = [
            insecure_channel(a) for a in (profile_addr, generation_addr, prediction_addr)
        ]
        self.profile = profile_pb2_grpc.ProfileServiceStub(self._channels[0])
        self.generation = generation_pb2_grpc.GenerationServiceStub(self._channels[1])
        self.prediction = prediction_pb2_grpc.PredictionServiceStub(self._channels[2])

    async def train_model(
        self, request: TrainRequest, metadata: Metadata, timeout: float
    ) -> TrainResult:
        """PredictionService.TrainModel (promote if better) for the domain's retrain."""
        reply = await self.prediction.TrainModel(
            messages.train_model_request(request), metadata=metadata, timeout=timeout
        )
        return messages.train_result_from_proto(reply)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
