"""Reader for the Upworthy Research Archive A/B test CSV format (gzip or plain).

Columns used: clickability_test_id, eyecatcher_id, headline, impressions, clicks (and lede, for
stories). A group is (test, image): the archive's tests vary headline and image together, and
only headlines shown with the same image can be compared as text.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from copyloop.prediction.features.ab_tests import ABVariant

REQUIRED_COLUMNS = ("clickability_test_id", "eyecatcher_id", "headline", "impressions", "clicks")
DEV_FILE = "upworthy_ab_tests_dev.csv.gz"

Stories = dict[str, set[tuple[str, str]]]


def load_upworthy(path: str | Path) -> list[ABVariant]:
    """Variants from one archive file; rows with no headline or no impressions are skipped."""
    frame = pd.read_csv(
        path, compression="infer", dtype={"clickability_test_id": str, "eyecatcher_id": str}
    )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not an Upworthy A/B file, missing columns {missing}")
    frame = frame.dropna(subset=["headline"])
    frame = frame[frame["impressions"] > 0]
    eyecatcher = frame["eyecatcher_id"].fillna("none")
    return [
        ABVariant(
            group_id=f"{test}/{image}",
            text=str(headline),
            impressions=int(impressions),
            clicks=int(clicks),
            test_id=str(test),
        )
        for test, image, headline, impressions, clicks in zip(
            frame["clickability_test_id"],
            eyecatcher,
            frame["headline"],
            frame["impressions"],
            frame["clicks"],
            strict=True,
        )
    ]


def load_upworthy_stories(path: str | Path) -> Stories:
    """Each test's (lede, image) pairs, for `split_by_story`: re-runs of one story under a new
    test id share a lede or an image, and must not fall on both sides of a split. A file
    without a lede column links tests by image only."""
    frame = pd.read_csv(
        path, compression="infer", dtype={"clickability_test_id": str, "eyecatcher_id": str}
    )
    ledes = frame["lede"].fillna("") if "lede" in frame.columns else pd.Series("", frame.index)
    stories: Stories = defaultdict(set)
    for test, image, lede in zip(
        frame["clickability_test_id"], frame["eyecatcher_id"].fillna(""), ledes, strict=True
    ):
        stories[str(test)].add((str(lede), str(image)))
    return dict(stories)
