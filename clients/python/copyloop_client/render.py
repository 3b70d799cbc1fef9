"""Readable tables for the CLI (rich), kept apart from the commands so the same views can be
used from notebooks: `rich.print(recommendations_table(reply))`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from rich.table import Table

from copyloop.v1 import fusion_pb2, generation_pb2, prediction_pb2
from copyloop_client.convert import enum_label
from copyloop_client.platform_control import PlatformStatus

__all__ = [
    "copy_sources_line",
    "experiment_line",
    "models_table",
    "performance_table",
    "platform_table",
    "recommendations_table",
    "report_table",
    "review_table",
    "slice_table",
    "variants_table",
    "when",
]


def when(ts: timestamp_pb2.Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(value: float) -> str:
    return f"{value:.2%}"


def recommendations_table(reply: fusion_pb2.RecommendResponse, width: int = 120) -> Table:
    """rank, title, price, copy, pCTR, pCVR, reasons; long titles are cut to leave the copy
    and the reasons (wrapped, never cut) most of the `width`."""
    table = Table(title=f"request {reply.request_id}", title_justify="left", show_lines=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(
        "title", max_width=max(10, (width - 50) // 4), overflow="ellipsis", no_wrap=True
    )
    table.add_column("price", justify="right", no_wrap=True)
    table.add_column("copy", ratio=3)
    table.add_column("pCTR", justify="right", no_wrap=True)
    table.add_column("pCVR", justify="right", no_wrap=True)
    table.add_column("reasons", ratio=3)
    for r in reply.recommendations:
        table.add_row(
            str(r.rank),
            r.title,
            f"{r.price:.2f} {r.currency_code}".strip(),
            r.copy.text,
            _pct(r.p_ctr),
            _pct(r.p_cvr),
            "; ".join(r.reasons) or "-",
        )
    return table


def copy_sources_line(reply: fusion_pb2.RecommendResponse) -> str:
    """Where the copy came from (pool / generated / fallback / generic), counted."""
    counts = Counter(
        enum_label(fusion_pb2.CopySource, r.copy.source, "COPY_SOURCE_")
        for r in reply.recommendations
    )
    models = sorted({r.model_version for r in reply.recommendations})
    return (
        f"copy: {', '.join(f'{n} {source}' for source, n in counts.most_common())}; "
        f"scores: {', '.join(models)}"
    )


def variants_table(reply: generation_pb2.GenerateResponse) -> Table:
    table = Table(show_lines=True)
    for name in ("#", "copy", "quality", "coverage", "compliance", "source"):
        table.add_column(name)
    for n, v in enumerate(reply.variants, start=1):
        c = v.compliance
        notes = [f"{x.rule}: {x.detail}" for x in c.violations]
        notes += [f"redacted {r}" for r in c.redactions]
        notes += ["disclaimer added"] * c.disclaimer_added + ["truncated"] * c.truncated
        compliance = ("passed" if c.passed else "[red]failed[/red]") + (
            f" ({'; '.join(notes)})" if notes else ""
        )
        table.add_row(
            str(n),
            v.text,
            f"{v.quality.overall:.2f}",
            f"{v.coverage.score:.2f}",
            compliance,
            enum_label(generation_pb2.VariantSource, v.source, "VARIANT_SOURCE_"),
        )
    return table


def review_table(text: str, reply: generation_pb2.ReviewCopyResponse) -> Table:
    """One row per finding, with the part of the text it is about; then the scores."""
    verdict = "[green]passed[/green]" if reply.passed else "[red]failed[/red]"
    table = Table(title=f"{verdict}: {text}", show_lines=True)
    for name in ("check", "where", "finding"):
        table.add_column(name)
    for f in reply.findings:
        where = text[f.span.start : f.span.end] if f.HasField("span") else ""
        kind = f" ({f.claim_kind})" if f.claim_kind else ""
        table.add_row(f.check + kind, where, f.message)
    effect = reply.predicted_effect
    scores = (
        f"quality {reply.quality.overall:.2f}, coverage {reply.coverage.score:.2f}, "
        f"sentiment {reply.sentiment:+.2f}"
    )
    if reply.HasField("predicted_effect"):
        scores += f", predicted CTR {effect.p_ctr:.4f} ({effect.model_version})"
    table.add_row("scores", "", scores)
    for degradation in reply.degradations:
        table.add_row("note", "", degradation)
    return table


def models_table(versions: Sequence[prediction_pb2.ModelVersion]) -> Table:
    table = Table()
    for name in (
        "version",
        "state",
        "created",
        "promoted",
        "CTR AUC",
        "CTR logloss",
        "CVR AUC",
        "examples",
    ):
        table.add_column(name)
    for v in versions:
        m = v.metrics
        table.add_row(
            v.version,
            enum_label(prediction_pb2.ModelVersionState, v.state, "MODEL_VERSION_STATE_"),
            when(v.create_time),
            when(v.promote_time),
            f"{m.ctr.auc:.3f}",
            f"{m.ctr.logloss:.4f}",
            f"{m.cvr.auc:.3f}",
            str(m.ctr.example_count),
        )
    return table


def _arm_versions(a: fusion_pb2.Arm) -> str:
    """ ", copywriter 2, template v3" for an arm that pins versions, "" for one that does not."""
    pins = []
    if a.copywriter_version:
        pins.append(f"copywriter {a.copywriter_version}")
    if a.prompt_template_version:
        pins.append(f"template {a.prompt_template_version}")
    return "".join(f", {p}" for p in pins)


def experiment_line(e: fusion_pb2.Experiment) -> str:
    arms = ", ".join(
        f"{a.arm_id} ({enum_label(fusion_pb2.ArmStrategy, a.strategy, 'ARM_STRATEGY_')}, "
        f"weight {a.traffic_weight:g}{_arm_versions(a)})"
        for a in e.arms
    )
    state = enum_label(fusion_pb2.ExperimentState, e.state, "EXPERIMENT_STATE_")
    return f"experiment {e.experiment_id} [{state}] {e.display_name or ''}: {arms}".replace(
        "  ", " "
    )


def report_table(report: fusion_pb2.GetExperimentReportResponse) -> Table:
    table = Table(
        title=f"{report.experiment.experiment_id} (baseline {report.baseline_arm_id})",
        title_justify="left",
    )
    for name in (
        "arm",
        "users",
        "impressions",
        "clicks",
        "purchases",
        "CTR",
        "CVR",
        "revenue/imp",
        "CTR lift [95% interval]",
        "P(best)",
    ):
        table.add_column(name, justify="left" if name == "arm" else "right")
    for a in report.arms:
        interval = a.ctr_lift_interval
        lift = (
            "baseline"
            if a.arm_id == report.baseline_arm_id
            else f"{a.ctr_lift:+.1%} [{interval.lower:+.1%}, {interval.upper:+.1%}]"
        )
        table.add_row(
            a.arm_id,
            str(a.user_count),
            str(a.impressions),
            str(a.clicks),
            str(a.purchases),
            _pct(a.ctr),
            _pct(a.cvr),
            f"{a.revenue_per_impression:.3f}",
            lift,
            f"{a.probability_best:.2f}",
        )
    return table


def slice_table(report: fusion_pb2.GetExperimentReportResponse) -> Table:
    """Results per (arm, shopper segment, copy angle): which kind of copy worked for whom."""
    table = Table(title="by shopper segment and copy angle", title_justify="left")
    for name in ("arm", "segment", "angle", "impressions", "clicks", "CTR [95% interval]"):
        table.add_column(name, justify="right" if name in ("impressions", "clicks") else "left")
    for c in report.slices:
        table.add_row(
            c.arm_id,
            c.segment or "-",
            c.angle or "-",
            str(c.impressions),
            str(c.clicks),
            f"{_pct(c.ctr)} [{_pct(c.ctr_interval.lower)}, {_pct(c.ctr_interval.upper)}]",
        )
    return table


def performance_table(creatives: Sequence[fusion_pb2.CreativePerformance]) -> Table:
    """Creatives best lift first: item, segment, angle, impressions, clicks against expected,
    and the lift with its 95% interval."""
    table = Table(title="creatives by lift (clicks over expected, shrunk toward 1)")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("creative", no_wrap=True)
    table.add_column("item", overflow="ellipsis", max_width=24, no_wrap=True)
    table.add_column("segment", no_wrap=True)
    table.add_column("angle", no_wrap=True)
    table.add_column("impressions", justify="right", no_wrap=True)
    table.add_column("clicks", justify="right", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    table.add_column("lift [95%]", justify="right", no_wrap=True)
    for n, c in enumerate(creatives, start=1):
        table.add_row(
            str(n),
            c.creative_id,
            c.item_id,
            c.segment or "-",
            c.angle or "-",
            str(c.impressions),
            str(c.clicks),
            f"{c.expected_clicks:.1f}",
            f"{c.lift:.2f} [{c.lift_interval.lower:.2f}, {c.lift_interval.upper:.2f}]",
        )
    return table


def platform_table(status: PlatformStatus) -> Table:
    table = Table(title=status.note, title_justify="left")
    table.add_column("service")
    table.add_column("address")
    table.add_column("health")
    addresses = status.info.addresses if status.info else {}
    for service, health in status.health.items():
        colour = "green" if health == "SERVING" else "red"
        table.add_row(service, addresses.get(service, "-"), f"[{colour}]{health}[/{colour}]")
    return table
