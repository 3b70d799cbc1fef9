"""FusionService's calls to the other three services. The caller's API key travels with every
downstream call, so the tenant boundary holds end to end; each call gets its own timeout, cut
from the request's remaining budget."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from copyloop.common.tenancy import current_request_id
from copyloop.common.tracing import client_interceptors
from copyloop.fusion import messages
from copyloop.fusion.domain import TrainRequest, TrainResult
from copyloop.v1 import generation_pb2_grpc, prediction_pb2_grpc, profile_pb2_grpc

Metadata = tuple[tuple[str, str], ...]


class Downstream:
    def __init__(self, profile_addr: str, generation_addr: str, prediction_addr: str) -> None:
        options = [
            ("grpc.max_receive_message_length", 32 << 20),
            ("grpc.max_send_message_length", 32 << 20),
        ]
        interceptors = list(client_interceptors())  # trace context travels with every call
        self._channels = [
            grpc.aio.insecure_channel(a, options=options, interceptors=interceptors or None)
            for a in (profile_addr, generation_addr, prediction_addr)
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


def forwarded_metadata(incoming: Sequence[tuple[str, str]] | None) -> Metadata:
    """The caller's credentials plus this request's id, for every downstream call."""
    kept = [(k, str(v)) for k, v in incoming or () if k == "authorization"]
    request_id = current_request_id()
    if request_id:
        kept.append(("x-request-id", request_id))
    return tuple(kept)


def describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return str(error.code().name)
    if isinstance(error, TimeoutError):
        return "DEADLINE_EXCEEDED"
    return type(error).__name__
