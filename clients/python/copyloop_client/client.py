"""`Copyloop`: the blocking client (sync grpc), for scripts, notebooks and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    prediction_pb2,
    prediction_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)
from copyloop_client import builders
from copyloop_client.builders import ArmLike, EventLike, ItemLike
from copyloop_client.channel import auth_metadata, sync_channels
from copyloop_client.config import ClientConfig
from copyloop_client.convert import pin_arm_versions
from copyloop_client.errors import CopyloopError
from copyloop_client.lookups import missing_item_error
from copyloop_client.results import IngestSummary, UpsertSummary
from copyloop_client.stubs import WrappedStub

if TYPE_CHECKING:
    from copyloop.v1.fusion_pb2_grpc import FusionServiceStub
    from copyloop.v1.generation_pb2_grpc import GenerationServiceStub
    from copyloop.v1.prediction_pb2_grpc import PredictionServiceStub
    from copyloop.v1.profile_pb2_grpc import ProfileServiceStub

__all__ = ["Copyloop"]

# grpc ships no type stubs, so mypy sees the generated stubs' calls as returning Any; the helpers
# below bind each reply to its declared type (`reply: X = ...`) to keep their signatures checked.


class Copyloop:
    """The four services as `profile`, `generation`, `prediction`, `fusion` (the generated
    stubs' methods, with the API key, default deadline and SDK errors), plus helpers for the
    everyday calls. Use as a context manager, or call close()."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig.load()
        self._channels = sync_channels(self.config)
        md = auth_metadata(self.config.api_key)
        timeout = self.config.timeout_s

        def wrap(service: str, stub_type: Any, module: Any, name: str) -> Any:
            stub = stub_type(self._channels[service])
            return WrappedStub(stub, module.DESCRIPTOR.services_by_name[name], md, timeout)

        self.profile = cast(
            "ProfileServiceStub",
            wrap("profile", profile_pb2_grpc.ProfileServiceStub, profile_pb2, "ProfileService"),
        )
        self.generation = cast(
            "GenerationServiceStub",
            wrap(
                "generation",
                generation_pb2_grpc.GenerationServiceStub,
                generation_pb2,
                "GenerationService",
            ),
        )
        self.prediction = cast(
            "PredictionServiceStub",
            wrap(
                "prediction",
                prediction_pb2_grpc.PredictionServiceStub,
                prediction_pb2,
                "PredictionService",
            ),
        )
        self.fusion = cast(
            "FusionServiceStub",
            wrap("fusion", fusion_pb2_grpc.FusionServiceStub, fusion_pb2, "FusionService"),
        )

    def close(self) -> None:
        for channel in {id(c): c for c in self._channels.values()}.values():
            channel.close()

    def __enter__(self) -> Copyloop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def channel(self, service: str) -> grpc.Channel:
        """The raw channel (e.g. for the health service, which needs no key)."""
        return self._channels[service]

    # ------------------------------------------------------------------------- catalog

    def upsert_items(self, items: Iterable[ItemLike], batch_size: int = 500) -> UpsertSummary:
        """Creates or updates items (dicts or Item messages) in batches; each batch is all or
        nothing on the server."""
        summary = UpsertSummary()
        for chunk in builders.batched(
            map(builders.to_item, items), min(batch_size, builders.MAX_UPSERT_BATCH)
        ):
            summary.add(
                self.profile.UpsertItems(
                    profile_pb2.UpsertItemsRequest(
                        items=chunk, idempotency_key=builders.new_idempotency_key()
                    )
                )
            )
        return summary

    def get_items(self, item_ids: Sequence[str]) -> profile_pb2.GetItemsResponse:
        reply: profile_pb2.GetItemsResponse = self.profile.GetItems(
            profile_pb2.GetItemsRequest(item_ids=list(item_ids))
        )
        return reply

    def get_item(self, item_id: str) -> common_pb2.Item:
        """One item; NotFoundError (resource_type "item") when the catalog has no such id."""
        reply = self.get_items([item_id])
        if not reply.items:
            raise missing_item_error(item_id)
        return reply.items[0]

    # ------------------------------------------------------------------------- events

    def ingest_events(self, events: Iterable[EventLike], batch_size: int = 1000) -> IngestSummary:
        """Sends events (dicts or Event messages) in IngestEvents batches."""
        summary = IngestSummary()
        for chunk in builders.batched(
            map(builders.to_event, events), min(batch_size, builders.MAX_EVENT_BATCH)
        ):
            reply = self.profile.IngestEvents(profile_pb2.IngestEventsRequest(events=chunk))
            summary.add(reply.summary, summary.sent)
            summary.sent += len(chunk)
        return summary

    def stream_events(
        self,
        events: Iterable[EventLike],
        chunk_size: int = 1000,
        on_chunk: Callable[[int], None] | None = None,
        timeout: float | None = None,
    ) -> IngestSummary:
        """One IngestEventStream call for any number of events (one summary at the end);
        `on_chunk(n)` is called as each chunk of n events is handed to gRPC (progress bars)."""
        sent = [0]
        failure: list[BaseException] = []

        def chunks() -> Iterator[profile_pb2.IngestEventStreamRequest]:
            try:
                for chunk in builders.batched(
                    map(builders.to_event, events), min(chunk_size, builders.MAX_EVENT_BATCH)
                ):
                    yield profile_pb2.IngestEventStreamRequest(events=chunk)
                    sent[0] += len(chunk)
                    if on_chunk:
                        on_chunk(len(chunk))
            except (
                Exception
            ) as exc:  # surfaced below instead of gRPC's "exception iterating requests"
                failure.append(exc)
                raise

        try:
            reply = self.profile.IngestEventStream(chunks(), timeout=timeout)
        except CopyloopError:
            if failure:
                raise failure[0] from None
            raise
        summary = IngestSummary(sent=sent[0])
        summary.add(reply.summary)
        return summary

    def get_profile(self, user_id: str) -> common_pb2.UserProfile:
        profile: common_pb2.UserProfile = self.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id=user_id)
        ).profile
        return profile

    def delete_user(self, user_id: str) -> fusion_pb2.FusionServiceDeleteUserResponse:
        """Erases the user everywhere (a privacy request): fusion's serve log at once, the
        profile and the training log through fusion's outbox shortly after. Idempotent."""
        reply: fusion_pb2.FusionServiceDeleteUserResponse = self.fusion.DeleteUser(
            fusion_pb2.FusionServiceDeleteUserRequest(user_id=user_id)
        )
        return reply

    # ------------------------------------------------------------------------- serving

    def recommend(
        self,
        user_id: str,
        channel: str | int = "push",
        locale: str = "en-US",
        n: int = 10,
        **options: Any,
    ) -> fusion_pb2.RecommendResponse:
        """Options: candidate_item_ids, experiment_id, objective ("ctr", "ctcvr",
        "expected_value"), latency_budget_ms, placement."""
        reply: fusion_pb2.RecommendResponse = self.fusion.Recommend(
            builders.recommend_request(user_id, channel, locale, n, **options)
        )
        return reply

    def report_outcome(
        self,
        request_id: str,
        impression_id: str,
        type: str | int,
        value: float = 0.0,
        event_id: str | None = None,
        event_time: Any = None,
    ) -> fusion_pb2.ReportOutcomeResponse:
        """One outcome (impression/click/add_to_cart/purchase) of a recommendation."""
        return self.report_outcomes(
            [builders.outcome_event(request_id, impression_id, type, value, event_id, event_time)]
        )

    def report_outcomes(
        self, events: Iterable[fusion_pb2.OutcomeEvent | Mapping[str, Any]]
    ) -> fusion_pb2.ReportOutcomeResponse:
        outcomes = [
            e if isinstance(e, fusion_pb2.OutcomeEvent) else builders.outcome_event(**e)
            for e in events
        ]
        reply: fusion_pb2.ReportOutcomeResponse = self.fusion.ReportOutcome(
            fusion_pb2.ReportOutcomeRequest(events=outcomes)
        )
        return reply

    def generate(
        self,
        item: str | ItemLike,
        channel: str | int = "push",
        locale: str = "en-US",
        n: int = 3,
        **options: Any,
    ) -> generation_pb2.GenerateResponse:
        """Copy variants for an item (an id is read from the catalog first). Options: tone,
        segment, seed, store_in_pool, max_chars."""
        message = self.get_item(item) if isinstance(item, str) else builders.to_item(item)
        reply: generation_pb2.GenerateResponse = self.generation.Generate(
            builders.generate_request(message, channel, locale, n, **options)
        )
        return reply

    def review(
        self,
        item: str | ItemLike,
        text: str,
        channel: str | int = "push",
        locale: str = "en-US",
        **options: Any,
    ) -> generation_pb2.ReviewCopyResponse:
        """Checks copy someone wrote, as generated copy is checked: claims against the item and
        promotion, sentiment, compliance, length (an id is read from the catalog first).
        Options: segment, discount_percent, free_shipping, buy_one_get_one, free_gift,
        promotion_ends (datetime), banned_terms, must_include, disclaimer, max_chars."""
        message = self.get_item(item) if isinstance(item, str) else builders.to_item(item)
        reply: generation_pb2.ReviewCopyResponse = self.generation.ReviewCopy(
            builders.review_request(message, text, channel, locale, **options)
        )
        return reply

    def score(
        self,
        user_id: str,
        items: Sequence[str | ItemLike],
        channel: str | int = "push",
        locale: str = "en-US",
        **options: Any,
    ) -> prediction_pb2.ScoreResponse:
        """pCTR/pCVR for the user and items (ids are read from the catalog; the user's profile
        is read from ProfileService unless `profile=` is given). Options: copy_texts,
        creative_ids, model_version, profile."""
        messages = self._resolve_items(items)
        options.setdefault("profile", self.get_profile(user_id))
        reply: prediction_pb2.ScoreResponse = self.prediction.Score(
            builders.score_request(user_id, messages, channel, locale, **options)
        )
        return reply

    def _resolve_items(self, items: Sequence[str | ItemLike]) -> list[common_pb2.Item]:
        ids = [i for i in items if isinstance(i, str)]
        found = {i.item_id: i for i in self.get_items(ids).items} if ids else {}
        for item_id in ids:
            if item_id not in found:
                raise missing_item_error(item_id)
        return [found[i] if isinstance(i, str) else builders.to_item(i) for i in items]

    # ------------------------------------------------------------------------- models

    def train(self, days: int = 7, timeout: float = 600.0) -> fusion_pb2.RetrainModelResponse:
        """Retrains the CTR/CVR model on the last `days` of served impressions and promotes it
        only if it beats the live version on the newest part of the window."""
        reply: fusion_pb2.RetrainModelResponse = self.fusion.RetrainModel(
            fusion_pb2.RetrainModelRequest(
                window_days=days, idempotency_key=builders.new_idempotency_key()
            ),
            timeout=timeout,
        )
        return reply

    def train_model(
        self,
        train_window: tuple[Any, Any],
        eval_window: tuple[Any, Any],
        *,
        epochs: int = 0,
        seed: int = 0,
        promote_if_better: bool = False,
        timeout: float = 600.0,
    ) -> prediction_pb2.TrainModelResponse:
        """Trains on explicit windows (ISO text, epoch seconds or datetimes) through
        PredictionService; `train` picks the windows for you."""
        reply: prediction_pb2.TrainModelResponse = self.prediction.TrainModel(
            builders.train_model_request(
                train_window,
                eval_window,
                epochs=epochs,
                seed=seed,
                promote_if_better=promote_if_better,
            ),
            timeout=timeout,
        )
        return reply

    def promote(self, version: str, force: bool = False) -> prediction_pb2.PromoteModelResponse:
        reply: prediction_pb2.PromoteModelResponse = self.prediction.PromoteModel(
            prediction_pb2.PromoteModelRequest(version=version, force=force)
        )
        return reply

    def rollback(self) -> prediction_pb2.ModelVersion:
        version: prediction_pb2.ModelVersion = self.prediction.RollbackModel(
            prediction_pb2.RollbackModelRequest(idempotency_key=builders.new_idempotency_key())
        ).model_version
        return version

    def list_models(self, page_size: int = 100) -> list[prediction_pb2.ModelVersion]:
        """Every registered model version, newest first (all pages)."""
        versions: list[prediction_pb2.ModelVersion] = []
        token = ""
        while True:
            reply = self.prediction.ListModelVersions(
                prediction_pb2.ListModelVersionsRequest(page_size=page_size, page_token=token)
            )
            versions.extend(reply.model_versions)
            token = reply.next_page_token
            if not token:
                return versions

    # ------------------------------------------------------------------------- experiments

    def create_experiment(
        self,
        experiment_id: str,
        arms: Sequence[ArmLike],
        display_name: str = "",
        copywriter_versions: Mapping[str, str] | None = None,
        template_versions: Mapping[str, str] | None = None,
    ) -> fusion_pb2.Experiment:
        """Arms as "arm_id:STRATEGY:weight" strings, tuples or Arm messages.
        `copywriter_versions` / `template_versions` ({arm_id: version}) make an arm serve
        only copy of that copywriter model version / prompt template version, so a new
        copywriter is A/B-tested against the current one."""
        pinned = pin_arm_versions(
            [builders.parse_arm(a) for a in arms], copywriter_versions, template_versions
        )
        experiment: fusion_pb2.Experiment = (
            self.fusion.CreateExperiment(
                builders.create_experiment_request(experiment_id, pinned, display_name)
            )
        ).experiment
        return experiment

    def stop_experiment(self, experiment_id: str) -> fusion_pb2.Experiment:
        experiment: fusion_pb2.Experiment = self.fusion.StopExperiment(
            fusion_pb2.StopExperimentRequest(experiment_id=experiment_id)
        ).experiment
        return experiment

    def experiment_report(
        self, experiment_id: str, baseline_arm_id: str = "", include_chart: bool = False
    ) -> fusion_pb2.GetExperimentReportResponse:
        reply: fusion_pb2.GetExperimentReportResponse = self.fusion.GetExperimentReport(
            fusion_pb2.GetExperimentReportRequest(
                experiment_id=experiment_id,
                baseline_arm_id=baseline_arm_id,
                include_chart=include_chart,
            )
        )
        return reply

    def list_creative_performance(
        self,
        min_impressions: int = 0,
        segment: str = "",
        limit: int | None = None,
        page_size: int = 100,
    ) -> list[fusion_pb2.CreativePerformance]:
        """Served pool creatives per shopper segment, best lift first: clicks against the
        clicks their predicted CTRs expected, shrunk toward 1 for small counts, with a 95%
        interval (the winners to fine-tune the copywriter on). All pages, or the first
        `limit` creatives; `segment` "" = every segment, `min_impressions` 0 = at least 1."""
        found: list[fusion_pb2.CreativePerformance] = []
        token = ""
        while limit is None or len(found) < limit:
            wanted = page_size if limit is None else min(page_size, limit - len(found))
            reply = self.fusion.ListCreativePerformance(
                fusion_pb2.ListCreativePerformanceRequest(
                    page_size=wanted,
                    page_token=token,
                    min_impressions=min_impressions,
                    segment=segment,
                )
            )
            found.extend(reply.creatives)
            token = reply.next_page_token
            if not token:
                break
        return found
