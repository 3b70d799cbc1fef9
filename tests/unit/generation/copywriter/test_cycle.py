"""The copywriter cycle without Triton: winners to a lift-weighted CSV, a stable held-out
split, version numbering and publishing in a model repository, and one whole cycle on the
tiny model."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from copyloop.generation.copywriter.cycle import (
    CycleConfig,
    CycleError,
    Winner,
    delexicalise,
    newest_version,
    next_version,
    publish_version,
    run_cycle,
    select_winners,
    split_holdout,
    training_rows,
    write_training_csv,
)
from copyloop.generation.copywriter.finetune import load_examples
from copyloop.generation.copywriter.tiny import build_tiny_model, single_thread
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.slots import fill_slots
from copyloop.generation.triton_local import (
    DEFAULT_MODEL_REPOSITORY,
    VERSION_FILE,
    lineage_versions,
)

BRIEF = CopyBrief(
    item_title="Aurora Desk Lamp",
    brand="Lumo",
    category_path=("Home & Kitchen", "Lighting"),
    price=29.99,
    list_price=39.99,
    currency="USD",
    selling_points=("warm dimmable light", "USB-C charging"),
    attributes=(("color", "white"),),
    channel="push",
    locale="en-US",
    tone="playful",
)


def winner(cid: str, lift: float, impressions: int = 500, **over: object) -> Winner:
    fields: dict[str, object] = dict(
        creative_id=cid,
        text="Aurora Desk Lamp by Lumo, now $29.99: warm dimmable light.",
        segment="bargain_hunter",
        angle="value",
        lift=lift,
        impressions=impressions,
        brief=BRIEF,
    )
    fields.update(over)
    return Winner(**fields)  # type: ignore[arg-type]


def test_delexicalise_turns_the_facts_back_into_slots_that_fill_to_the_same_text() -> None:
    text = "Aurora Desk Lamp by Lumo, now $29.99 (was $39.99): warm dimmable light."
    frame = delexicalise(text, BRIEF)
    assert frame == "{title} by {brand}, now {price} (was {list_price}): {point1}."
    filled = fill_slots(frame, BRIEF)
    assert filled is not None and filled.text == text
    # A sentence-initial selling point was capitalised by the filler: still recovered.
    assert delexicalise("Warm dimmable light, Lumo.", BRIEF) == "{point1}, {brand}."
    assert delexicalise("{title} now {price}", BRIEF) == "{title} now {price}"  # a frame already


def test_only_winners_with_lift_above_one_and_enough_impressions_are_kept_best_first() -> None:
    chosen = select_winners(
        [
            winner("a", 1.4),
            winner("b", 0.8),  # worse than predicted
            winner("c", 1.0),  # exactly as predicted: nothing to learn
            winner("d", 2.0, impressions=50),  # too few impressions to trust
            winner("e", 1.9),
            winner("f", 1.5, brief=None),  # no item facts: its frame cannot be recovered
        ],
        CycleConfig(min_impressions=100),
    )
    assert [w.creative_id for w in chosen] == ["e", "a"]
    assert all(w.frame.startswith("{title}") for w in chosen)


def test_the_training_csv_is_weighted_by_lift_and_read_back_by_finetune(tmp_path: Path) -> None:
    chosen = select_winners(
        [winner("a", 1.2), winner("b", 2.4), winner("c", 9.0, text="Lumo: {point2}!")],
        CycleConfig(min_impressions=100, max_weight=5.0),
    )
    rows = training_rows(chosen, CycleConfig(max_weight=5.0))
    assert [r["weight"] for r in rows] == [5.0, 2.4, 1.2]  # capped, then as lifts
    assert rows[0]["copy"] == "Lumo: {point2}!" and rows[0]["angle"] == "value"
    path = write_training_csv(rows, tmp_path / "w.csv")
    with path.open() as handle:
        assert len(list(csv.DictReader(handle))) == 3
    examples = load_examples(path)
    weights = [w for _, _, w in examples]
    # finetune normalises to mean 1 and keeps the ratios of the lifts.
    assert sum(weights) / 3 == pytest.approx(1.0)
    assert weights[1] / weights[2] == pytest.approx(2.0)
    brief, copy, _ = examples[0]
    assert (brief.item_title, brief.angle, brief.audience_segment) == (
        "Aurora Desk Lamp",
        "value",
        "bargain_hunter",
    )
    assert brief.selling_points == BRIEF.selling_points and copy == "Lumo: {point2}!"
    assert dict(brief.attributes) == {"color": "white"}  # no stray columns became attributes


def test_the_held_out_split_is_stable_disjoint_and_never_empty() -> None:
    winners = [winner(f"cr_{n}", 1.5) for n in range(50)]
    train, held = split_holdout(winners, 0.2, seed=0)
    assert {w.creative_id for w in train}.isdisjoint({w.creative_id for w in held})
    assert len(train) + len(held) == 50 and 4 <= len(held) <= 18
    # A winner stays on its side when others join or leave.
    _, held2 = split_holdout([*winners[:30], winner("cr_new", 3.0)], 0.2, seed=0)
    assert {w.creative_id for w in held2} - {"cr_new"} == {
        w.creative_id for w in held if w.creative_id in {x.creative_id for x in winners[:30]}
    }
    # Two winners: one on each side, whatever the hashes say.
    small_train, small_held = split_holdout(winners[:2], 0.0)
    assert len(small_train) == 1 and len(small_held) == 1


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "models"
    shutil.copytree(
        DEFAULT_MODEL_REPOSITORY,
        repo,
        ignore=lambda d, names: [
            n for n in names if n == "__pycache__" or (n.isdigit() and n != "1")
        ],
    )
    return repo


def test_versions_are_numbered_after_every_directory_and_published_as_pointers(
    repository: Path, tmp_path: Path
) -> None:
    root, other_root = tmp_path / "weights-a", tmp_path / "weights-b"
    assert next_version(repository) == 2
    assert newest_version(repository, root) == (1, root)
    v2 = publish_version(repository, 2, tmp_path / "w2", root, 1)
    assert (v2 / "model.py").resolve() == (repository / "copywriter/1/model.py").resolve()
    pointer = json.loads((v2 / VERSION_FILE).read_text())
    assert pointer["model_dir"] == str((tmp_path / "w2").resolve())
    assert (pointer["root"], pointer["parent_version"]) == (str(root.resolve()), 1)
    publish_version(repository, 3, tmp_path / "w3", other_root, 1)  # another lineage
    assert next_version(repository) == 4  # numbers are never reused across lineages
    assert newest_version(repository, root) == (2, (tmp_path / "w2").resolve())
    assert lineage_versions(repository, root) == [1, 2]
    assert lineage_versions(repository, other_root) == [1, 3]
    with pytest.raises(CycleError):
        publish_version(repository, 2, tmp_path / "w2b", root, 1)
    # The root retrained in place: versions fine-tuned from its old weights no longer descend.
    root.mkdir()
    (root / "config.json").write_text("{}")
    assert lineage_versions(repository, root) == [1]
    publish_version(repository, 4, tmp_path / "w4", root, 1)
    assert lineage_versions(repository, root) == [1, 4]
    (root / "config.json").write_text('{"n_layer": 4}')
    assert lineage_versions(repository, root) == [1]
    assert not [p for p in (repository / "copywriter").iterdir() if p.name.startswith(".")]


def test_too_few_winners_is_an_error_not_an_empty_fine_tune(repository: Path) -> None:
    with pytest.raises(CycleError, match="at least 2"):
        run_cycle(
            [winner("a", 1.5), winner("b", 0.5)],
            repository=repository,
            root_model_dir="/nonexistent",
            weights_root="/nonexistent",
        )


def test_one_cycle_on_the_tiny_model_publishes_version_2(repository: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    with single_thread():
        build_tiny_model(tiny)
        winners = [winner(f"cr_{n}", 1.2 + n / 10) for n in range(10)]
        report = run_cycle(
            winners,
            repository=repository,
            root_model_dir=tiny,
            weights_root=tmp_path / "weights",
            config=CycleConfig(max_steps=6, batch_size=4, n_checks=3),
        )
    assert report.published and (report.version, report.parent_version) == (2, 1)
    assert (report.n_winners, report.n_train + report.n_heldout) == (10, 10)
    assert report.n_heldout >= 1 and report.n_checks == 3
    assert report.perplexity_before > 0 and report.perplexity_after > 0
    # Fine-tuned on these frames, the model finds the held-out ones (same frame) likelier.
    assert report.perplexity_after < report.perplexity_before
    assert (tmp_path / "weights/copywriter-v2/config.json").is_file()
    assert newest_version(repository, tiny) == (2, (tmp_path / "weights/copywriter-v2").resolve())
    assert json.loads(report.to_json())["version"] == 2 and "perplexity" in report.table()
