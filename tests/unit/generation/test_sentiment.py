"""Copy that speaks ill of the product is flagged; ordinary marketing copy, including the
problem-solution lines ("No more tangled cables", "告别烦恼"), is not."""

from __future__ import annotations

import pytest

from copyloop.generation.sentiment import (
    NEGATIVE_THRESHOLD,
    SentimentReport,
    score_sentiment,
)

# (locale, copy, speaks ill of the product)
CASES: list[tuple[str, str, bool]] = [
    # --- en: ordinary marketing copy --------------------------------------------------------
    ("en-US", "No more tangled cables", False),
    ("en-US", "Never run out of batteries again", False),
    ("en-US", "Stop wasting time", False),
    ("en-US", "Say goodbye to messy desks", False),
    ("en-US", "Tired of slow chargers? Meet PowerMax.", False),
    ("en-US", "Don't miss out!", False),
    ("en-US", "No mess, no stress, just fun", False),
    ("en-US", "Kill boredom with 520 pieces", False),
    ("en-US", "Build, launch and explore with the BrickCo Rocket Set", False),
    ("en-US", "Bright, fun and built to last", False),
    ("en-US", "Hurry, limited stock!", False),
    ("en-US", "Fight germs without harsh chemicals", False),
    ("en-US", "Pain-free charging for busy parents", False),
    ("en-US", "Never worry about leaks", False),
    ("en-US", "Zero hassle setup", False),
    ("en-US", "Beat the heat this summer", False),
    ("en-US", "Crush your workouts", False),
    ("en-US", "Killer deal on headphones", False),
    ("en-US", "No more junk drawers: a place for everything", False),
    ("en-US", "Say goodbye to flimsy phone cases", False),
    ("en-US", "Don't let spills ruin your carpet", False),
    ("en-US", "Forget about dead batteries and broken chargers", False),
    ("en-US", "Stop settling for cheap plastic toys", False),
    ("en-US", "Tired of awful coffee? Brew better at home.", False),
    ("en-US", "Insanely good sound for the price", False),
    ("en-US", "Now 25% off: the BrickCo Rocket Set", False),
    ("en-US", "Ages 8+. 520 pieces. Endless adventures.", False),
    ("en-US", "Not bad at all for a weekend project", False),
    ("en-US", "Protects against scratches and drops", False),
    ("en-US", "Eliminate odors in minutes", False),
    # --- en: speaks ill of the product ------------------------------------------------------
    ("en-US", "BrickCo Rocket Set is awful and cheap junk", True),
    ("en-US", "This toy is terrible", True),
    ("en-US", "Poor quality, broke after one day", True),
    ("en-US", "Don't buy this, it's a waste of money", True),
    ("en-US", "Flimsy and overpriced", True),
    ("en-US", "Cheap plastic that falls apart", True),
    ("en-US", "Disappointing and boring", True),
    ("en-US", "Worst purchase ever", True),
    ("en-US", "It's a scam", True),
    ("en-US", "Avoid this product", True),
    ("en-US", "The blender is loud, weak and useless", True),
    ("en-US", "Without a doubt the worst kettle we have sold", True),
    ("en-US", "A rip-off at any price", True),
    ("en-US", "Sad, ugly and badly made", True),
    ("en-US", "You will regret buying this charger", True),
    # --- zh: ordinary marketing copy --------------------------------------------------------
    ("zh-CN", "告别烦恼", False),
    ("zh-CN", "告别杂乱桌面", False),
    ("zh-CN", "再也不用担心漏水", False),
    ("zh-CN", "不再手忙脚乱", False),
    ("zh-CN", "拒绝无聊，快乐拼搭", False),
    ("zh-CN", "BrickCo火箭套装，激发孩子的想象力", False),
    ("zh-CN", "520块积木，拼出你的宇宙", False),
    ("zh-CN", "轻松搞定家务", False),
    ("zh-CN", "不伤手，不刺激", False),
    ("zh-CN", "不怕摔，耐用", False),
    ("zh-CN", "安全无毒，宝宝放心玩", False),
    ("zh-CN", "充电五分钟，通话两小时", False),
    ("zh-CN", "不再为电量焦虑", False),
    ("zh-CN", "远离蚊虫困扰", False),
    ("zh-CN", "限时3折，仅需19元", False),
    ("zh-CN", "摆脱垃圾食品，健康每一天", False),
    ("zh-CN", "再也不怕做工粗糙的廉价玩具", False),
    ("zh-CN", "小熊电热水壶，5分钟快速烧开", False),
    ("zh-CN", "今日特价，买一送一", False),
    ("zh-CN", "没有异味，宝宝安心", False),
    # --- zh: speaks ill of the product ------------------------------------------------------
    ("zh-CN", "质量太差，不要买", True),
    ("zh-CN", "这个玩具很垃圾", True),
    ("zh-CN", "做工粗糙，一用就坏", True),
    ("zh-CN", "难用又贵，后悔买了", True),
    ("zh-CN", "千万别买", True),
    ("zh-CN", "又吵又慢，很失望", True),
    ("zh-CN", "垃圾产品", True),
    ("zh-CN", "质量很差", True),
    ("zh-CN", "简直是骗钱", True),
    ("zh-CN", "劣质山寨货，不值这个价", True),
    ("zh-CN", "BrickCo火箭套装 is cheap junk", True),
]


def _id(case: tuple[str, str, bool]) -> str:
    return f"{'ill' if case[2] else 'ok'}:{case[1][:30]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_sentiment_table(case: tuple[str, str, bool]) -> None:
    locale, text, ill = case
    report = score_sentiment(text, locale)
    assert -1.0 <= report.score <= 1.0
    assert report.negative is ill, report
    assert report.negative is (report.score <= NEGATIVE_THRESHOLD)


def test_probe() -> None:
    report = score_sentiment("BrickCo Rocket Set is awful and cheap junk", "en-US")
    assert report.negative and report.score <= NEGATIVE_THRESHOLD


def test_positive_copy_scores_positive() -> None:
    assert score_sentiment("Bright, fun and built to last", "en-US").score > 0.3
    assert score_sentiment("BrickCo火箭套装，激发孩子的想象力", "zh-CN").score > 0.1


def test_empty_copy_is_neutral() -> None:
    assert score_sentiment("", "en-US") == SentimentReport(0.0, False)
    assert score_sentiment("   ", "zh-CN") == SentimentReport(0.0, False)


def test_long_input_is_capped() -> None:
    report = score_sentiment("Fun to build. " * 2000, "en-US")
    assert not report.negative
