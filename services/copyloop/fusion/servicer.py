"""FusionService gRPC servicer: validates, converts, and calls the recommender, the feedback
path, the experiment store and the retrain trigger."""

from __future__ import annotations

import math
import time

import grpc

from copyloop.common import pagination
from copyloop.common.db import BlockingRunner
from copyloop.common.deadlines import remaining_s
from copyloop.common.errors import FailedPrecondition, Violations
from copyloop.common.idempotency import validate_key
from copyloop.common.protoconv import epoch_to_ts
from copyloop.common.tenancy import current_tenant
from copyloop.fusion import messages
from copyloop.fusion.downstream import Downstream, forwarded_metadata
from copyloop.fusion.experiments import ArmCounts, build_report
from copyloop.fusion.feedback import Feedback
from copyloop.fusion.recommend import Recommender
from copyloop.fusion.report_chart import MetricBucket, experiment_chart
from copyloop.fusion.store import FusionStore
from copyloop.v1 import fusion_pb2, fusion_pb2_grpc, prediction_pb2

F = fusion_pb2
FULL_NAME = F.DESCRIPTOR.services_by_name["FusionService"].full_name
CHART_BUCKETS = 24


class FusionServicer(fusion_pb2_grpc.FusionServiceServicer):
    def __init__(
        self,
        store: FusionStore,
        downstream: Downstream,
        recommender: Recommender,
        feedback: Feedback,
        runner: BlockingRunner,
    ) -> None:
        self.store = store
        self.down = downstream
        self.recommender = recommender
        self.feedback = feedback
        self.runner = runner

    async def Recommend(
        self, request: F.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> F.RecommendResponse:
        messages.validate_recommend(request)
        left = context.time_remaining()
        return await self.recommender.recommend(
            request, forwarded_metadata(context.invocation_metadata()), left
        )

    async def ReportOutcome(
        self, request: F.ReportOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> F.ReportOutcomeResponse:
        events = messages.outcomes_from_proto(request)
        accepted, duplicate, rejected = await self.feedback.report(
            events, forwarded_metadata(context.invocation_metadata())
        )
        return F.ReportOutcomeResponse(
            accepted=accepted,
            duplicate=duplicate,
            rejected=len(rejected),
            rejection_reasons=[f"events[{e.index}] ({e.event_id}): {why}" for e, why in rejected],
        )

    async def CreateExperiment(
        self, request: F.CreateExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.CreateExperimentResponse:
        arms = messages.arms_from_proto(request)
        validate_key(request.idempotency_key)
        record = await self.runner.run(
            self.store.create_experiment,
            current_tenant(),
            request.experiment_id,
            request.display_name,
            arms,
        )
        return F.CreateExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def GetExperiment(
        self, request: F.GetExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.GetExperimentResponse:
        _require_experiment_id(request.experiment_id)
        record = await self.runner.run(
            self.store.get_experiment, current_tenant(), request.experiment_id
        )
        return F.GetExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def ListExperiments(
        self, request: F.ListExperimentsRequest, context: grpc.aio.ServicerContext
    ) -> F.ListExperimentsResponse:
        page = pagination.parse_page(request.page_size, request.page_token, "experiments")
        found = await self.runner.run(
            self.store.list_experiments, current_tenant(), page.after, page.size + 1
        )
        more = len(found) > page.size
        found = found[: page.size]
        return F.ListExperimentsResponse(
            experiments=[messages.experiment_to_proto(e) for e in found],
            next_page_token=pagination.next_token(found[-1].experiment_id, "experiments")
            if more
            else "",
        )

    async def StopExperiment(
        self, request: F.StopExperimentRequest, context: grpc.aio.ServicerContext
    ) -> F.StopExperimentResponse:
        _require_experiment_id(request.experiment_id)
        record = await self.runner.run(
            self.store.stop_experiment, current_tenant(), request.experiment_id
        )
        return F.StopExperimentResponse(experiment=messages.experiment_to_proto(record))

    async def GetExperimentReport(
        self, request: F.GetExperimentReportRequest, context: grpc.aio.ServicerContext
    ) -> F.GetExperimentReportResponse:
        _require_experiment_id(request.experiment_id)
        tenant = current_tenant()
        experiment = await self.runner.run(self.store.get_experiment, tenant, request.experiment_id)
        arm_ids = [a.arm_id for a in experiment.arms]
        if request.baseline_arm_id and request.baseline_arm_id not in arm_ids:
            v = Violations()
            v.add("baseline_arm_id", f"not an arm of this experiment: {', '.join(arm_ids)}")
            v.raise_if_any()
        counts = await self.runner.run(self.store.arm_counts, tenant, request.experiment_id)
        arms = [
            ArmCounts(**{**counts[a.arm_id].__dict__, "traffic_weight": a.traffic_weight})
            if a.arm_id in counts
            else ArmCounts(a.arm_id, traffic_weight=a.traffic_weight)
            for a in experiment.arms
        ]
        report = build_report(arms, request.baseline_arm_id)
        chart = b""
        if request.include_chart:
            timeline = await self.runner.run(self.store.timeline, tenant, request.experiment_id)
            chart = experiment_chart(
                _buckets(timeline), title=experiment.display_name or experiment.experiment_id
            )
        return messages.report_to_proto(experiment, report, chart)

    async def RetrainModel(
        self, request: F.RetrainModelRequest, context: grpc.aio.ServicerContext
    ) -> F.RetrainModelResponse:
        v = Violations()
        v.check(0 <= request.window_days <= 365, "window_days", "must be between 0 and 365")
        v.raise_if_any()
        validate_key(request.idempotency_key)
        now = time.time()
        since = now - (request.window_days or 7) * 86_400
        start = await self.runner.run(self.store.first_impression_time, current_tenant(), since)
        if start is None:
            raise FailedPrecondition(
                "no impressions have been reported in the window yet", "DATA", "outcomes"
            )
        # The newest fifth of the window (by time) evaluates, the rest trains, so the candidate
        # is judged on impressions it never saw.
        split = start + 0.8 * (now - start)
        reply = await self.down.prediction.TrainModel(
            prediction_pb2.TrainModelRequest(
                train_window=prediction_pb2.TimeWindow(
                    start_time=epoch_to_ts(start), end_time=epoch_to_ts(split)
                ),
                eval_window=prediction_pb2.TimeWindow(
                    start_time=epoch_to_ts(split), end_time=epoch_to_ts(now + 1)
                ),
                promote_if_better=True,
                idempotency_key=request.idempotency_key,
            ),
            metadata=forwarded_metadata(context.invocation_metadata()),
            timeout=remaining_s(context, 600),
        )
        version = reply.model_version
        ctr = version.metrics.ctr
        reason = (
            f"promoted: ctr auc {ctr.auc:.3f} on the evaluation window"
            if reply.promoted
            else f"not promoted: ctr auc {ctr.auc:.3f} did not beat the live version"
        )
        return F.RetrainModelResponse(
            model_version=version.version, promoted=reply.promoted, reason=reason
        )


def _require_experiment_id(experiment_id: str) -> None:
    v = Violations()
    v.check(
        bool(messages.EXPERIMENT_ID.match(experiment_id)),
        "experiment_id",
        "required: 1-64 characters of [a-z0-9-]",
    )
    v.raise_if_any()


def _buckets(timeline: list[tuple[float, str, str]]) -> list[MetricBucket]:
    if not timeline:
        return []
    first, last = timeline[0][0], timeline[-1][0]
    width = max((last - first) / CHART_BUCKETS, 1e-6)
    counts: dict[tuple[int, str], list[int]] = {}
    for t, arm, kind in timeline:
        key = (min(CHART_BUCKETS - 1, math.floor((t - first) / width)), arm)
        c = counts.setdefault(key, [0, 0])
        c[0 if kind == "impression" else 1] += 1
    return [
        MetricBucket(first + (b + 1) * width, arm, imps, clicks)
        for (b, arm), (imps, clicks) in sorted(counts.items())
    ]
