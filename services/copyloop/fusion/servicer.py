"""FusionService gRPC servicer, thin: `messages` parses and checks each request, the domain
(`recommend`, `feedback`, `domain`) does the work, `messages` builds the reply."""

from __future__ import annotations

import grpc

from copyloop.common import validation
from copyloop.common.deadlines import remaining_s
from copyloop.fusion import messages
from copyloop.fusion.domain import FusionDomain, TrainRequest, TrainResult
from copyloop.fusion.downstream import Downstream, forwarded_metadata
from copyloop.fusion.feedback import Feedback
from copyloop.fusion.recommend import Recommender
from copyloop.v1 import fusion_pb2, fusion_pb2_grpc

F = fusion_pb2
FULL_NAME = F.DESCRIPTOR.services_by_name["FusionService"].full_name
RETRAIN_TIMEOUT_S = 600
SETTLE_TIMEOUT_S = 10.0


@validation.checked_by(messages.validate_request)
class FusionServicer(fusion_pb2_grpc.FusionServiceServicer):
    def __init__(
        self,
        domain: FusionDomain,
        downstream: Downstream,
        recommender: Recommender,
        feedback: Feedback,
    ) -> None:
        self.domain = domain
        self.down = downstream
        self.recommender = recommender
        self.feedback = feedback

    async def Recommend(
        self, request: F.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> F.RecommendResponse:
        messages.validate_recommend(request)
        return await self.recommender.recommend(
            request, forwarded_metadata(context.invocation_metadata()), context.time_remaining()
        )

    async def ReportOutcome(
        self, request: F.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> F.ReportOutcomeResponse:
        events = messages.outcomes_from_proto(request)
        # Returns after the local commit; the outbox relay forwards to profile and prediction.
        accepted, duplicate, rejected = await self.feedback.report(events)
        return messages.outcomes_to_proto(accepted, duplicate, rejected)

    async def DeleteUser(
        self, request: F.FusionServiceDeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> F.FusionServiceDeleteUserResponse:
        user_id = messages.delete_user_from_proto(request)
        return messages.delete_user_to_proto(await self.feedback.delete_user(user_id))

    async def CreateExperiment(
        self, request: F.CreateExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.CreateExperimentResponse:
        record = await self.domain.create_experiment(messages.new_experiment_from_proto(request))
        return F.CreateExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def GetExperiment(
        self, request: F.GetExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.GetExperimentResponse:
        experiment_id = messages.experiment_id_from_proto(request.experiment_id)
        record = await self.domain.get_experiment(experiment_id)
        return F.GetExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def ListExperiments(
        self, request: F.ListExperimentsRequest, context: grpc.aio.ServicerContext
    ) -> F.ListExperimentsResponse:
        page = messages.page_from_proto(request)
        found = await self.domain.list_experiments(page.after, page.size)
        return messages.experiments_page_to_proto(found)

    async def StopExperiment(
        self, request: F.StopExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.StopExperimentResponse:
        experiment_id = messages.experiment_id_from_proto(request.experiment_id)
        record = await self.domain.stop_experiment(experiment_id)
        return F.StopExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def GetExperimentReport(
        self, request: F.GetExperimentReportRequest, context: grpc.aio.ServicerContext
    ) -> F.GetExperimentReportResponse:
        experiment_id = messages.experiment_id_from_proto(request.experiment_id)
        experiment = await self.domain.get_experiment(experiment_id)
        messages.check_baseline(request.baseline_arm_id, experiment)
        result = await self.domain.experiment_report(
            experiment, request.baseline_arm_id, request.include_chart
        )
        return messages.report_to_proto(result)

    async def ListCreativePerformance(
        self, request: F.ListCreativePerformanceRequest, context: grpc.aio.ServicerContext
    ) -> F.ListCreativePerformanceResponse:
        query = messages.performance_query_from_proto(request)
        page = await self.domain.list_creative_performance(query)
        return messages.performance_page_to_proto(page, query)

    async def RetrainModel(
        self, request: F.RetrainModelRequest, context: grpc.aio.ServicerContext
    ) -> F.RetrainModelResponse:
        window_days, key = messages.retrain_from_proto(request)
        metadata = forwarded_metadata(context.invocation_metadata())
        # Outcomes reported just before are still in the outbox: let them reach the training
        # log first (bounded; training proceeds with what is there if prediction is slow).
        await self.feedback.settle(
            min(SETTLE_TIMEOUT_S, remaining_s(context, RETRAIN_TIMEOUT_S) / 4)
        )

        async def train_model(train: TrainRequest) -> TrainResult:
            # The timeout is what is left of the caller's deadline when training starts.
            timeout = remaining_s(context, RETRAIN_TIMEOUT_S)
            return await self.down.train_model(train, metadata, timeout)

        return messages.retrain_to_proto(await self.domain.retrain(window_days, key, train_model))
