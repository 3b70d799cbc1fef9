"""Quality score used to order variants before the bandit sees them.

Parts, each in [0, 1] and reported separately so a reviewer can see why a variant ranks
where it does:
- fluency: the model's own mean log-probability per output token (None for fallbacks,
  whose weight is then spread over the other parts);
- tone: hits in small per-locale lexicons for the requested tone vs. other tones;
- readability: sentence length (words for English, characters for Chinese), shouting,
  repeated punctuation;
- coverage: the attribute coverage score (computed in coverage.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Mean log-prob per token at or below this maps to fluency 0, 0.0 maps to 1 (linear).
FLUENCY_LOGPROB_FLOOR = -4.0

TONE_LEXICONS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "friendly": (
            "you'll love",
            "enjoy",
            "perfect for",
            "treat yourself",
            "happy",
            "love",
            "welcome",
            "favorite",
            "favourite",
            "share",
            "cozy",
            "hello",
            "hi",
        ),
        "professional": (
            "designed",
            "engineered",
            "reliable",
            "quality",
            "efficient",
            "performance",
            "precision",
            "certified",
            "durable",
            "professional",
            "specification",
        ),
        "playful": (
            "fun",
            "wow",
            "yay",
            "blast",
            "adventure",
            "play",
            "let's",
            "awesome",
            "epic",
            "cool",
            "giggle",
            "🎉",
            "🚀",
            "✨",
        ),
        "urgent": (
            "now",
            "today",
            "hurry",
            "last chance",
            "limited",
            "don't miss",
            "ends",
            "ending soon",
            "tonight",
            "while stocks last",
            "left",
            "quick",
            "before",
        ),
        "luxury": (
            "exquisite",
            "elegant",
            "refined",
            "crafted",
            "timeless",
            "luxurious",
            "sophisticated",
            "indulge",
            "artisan",
            "signature",
            "premium",
        ),
        "informative": (
            "features",
            "includes",
            "made of",
            "made from",
            "material",
            "dimensions",
            "compatible",
            "details",
            "battery",
            "weight",
            "size",
            "learn",
        ),
    },
    "zh-CN": {
        "friendly": (
            "喜欢",
            "一起",
            "分享",
            "温暖",
            "贴心",
            "开心",
            "陪伴",
            "亲",
            "快乐",
            "欢迎",
            "你",
        ),
        "professional": ("专业", "精准", "可靠", "品质", "高效", "性能", "认证", "工艺", "耐用"),
        "playful": (
            "好玩",
            "有趣",
            "嗨",
            "哇",
            "趣味",
            "惊喜",
            "萌",
            "冒险",
            "酷",
            "乐趣",
            "🎉",
            "🚀",
        ),
        "urgent": (
            "立即",
            "马上",
            "今天",
            "限时",
            "仅剩",
            "抓紧",
            "截止",
            "倒计时",
            "错过",
            "赶紧",
            "速抢",
        ),
        "luxury": ("精致", "优雅", "典雅", "匠心", "奢华", "臻", "尊享", "质感", "品味", "格调"),
        "informative": (
            "包含",
            "采用",
            "材质",
            "尺寸",
            "规格",
            "适用",
            "功能",
            "参数",
            "重量",
            "续航",
        ),
    },
}


@dataclass(frozen=True)
class QualityWeights:
    fluency: float = 0.4
    tone: float = 0.2
    readability: float = 0.2
    coverage: float = 0.2


@dataclass
class QualityReport:
    overall: float
    fluency: float | None  # None when the text has no model log-probabilities
    tone: float
    readability: float
    coverage: float
    mean_logprob: float | None


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def fluency_score(
    cumulative_logprob: float | None,
    num_output_tokens: int | None,
    floor: float = FLUENCY_LOGPROB_FLOOR,
) -> tuple[float | None, float | None]:
    """(fluency, mean log-prob per token); (None, None) when the model gave none."""
    if cumulative_logprob is None or not num_output_tokens or num_output_tokens <= 0:
        return None, None
    mean = cumulative_logprob / num_output_tokens
    return _clamp(1.0 - mean / floor), mean


def _lexicon_hits(text: str, entries: tuple[str, ...], locale: str) -> int:
    folded = text.casefold()
    hits = 0
    for entry in entries:
        if locale == "en-US" and entry[0].isalpha():
            hits += bool(re.search(rf"(?<![a-z]){re.escape(entry)}(?![a-z])", folded))
        else:
            hits += entry in folded
    return hits


def tone_score(text: str, locale: str, tone: str) -> float:
    """Half for enough cues of the tone (2 hits = full), half for not sounding like another."""
    lexicons = TONE_LEXICONS.get(locale, {})
    target = _lexicon_hits(text, lexicons.get(tone, ()), locale)
    others = sum(
        _lexicon_hits(text, words, locale) for name, words in lexicons.items() if name != tone
    )
    strength = min(1.0, target / 2)
    purity = target / (target + others) if target + others else 0.5
    return round(0.5 * strength + 0.5 * purity, 4)


def readability_score(text: str, locale: str) -> float:
    """1 for short clear sentences; falls with long sentences, shouting and '!!!'."""
    text = text.strip()
    if not text:
        return 0.0
    if locale == "zh-CN":
        sentences = [s for s in re.split(r"[。！？!?；;\n]+", text) if s.strip()]
        per_sentence = sum(len(s) for s in sentences) / max(1, len(sentences))
        length_part = _clamp(1.0 - (per_sentence - 20) / 30)  # 20 chars ok, 50 unreadable
    else:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
        words = re.findall(r"[A-Za-z0-9'’-]+", text)
        per_sentence = len(words) / max(1, len(sentences))
        length_part = _clamp(1.0 - (per_sentence - 15) / 20)  # 15 words ok, 35 unreadable
        long_words = sum(1 for w in words if len(w) > 12) / max(1, len(words))
        length_part -= 0.5 * long_words
    penalty = 0.0
    letters = [c for c in text if c.isalpha() and c.isascii()]
    if len(letters) >= 10 and sum(c.isupper() for c in letters) / len(letters) > 0.5:
        penalty += 0.3  # SHOUTING
    if re.search(r"([!?！？])\1", text):
        penalty += 0.2
    return round(_clamp(length_part - penalty), 4)


def quality_score(
    text: str,
    locale: str,
    tone: str,
    coverage: float,
    cumulative_logprob: float | None = None,
    num_output_tokens: int | None = None,
    weights: QualityWeights = QualityWeights(),
) -> QualityReport:
    """Weighted mean of the parts that exist (fluency is skipped when absent)."""
    fluency, mean = fluency_score(cumulative_logprob, num_output_tokens)
    tone_part = tone_score(text, locale, tone)
    readability = readability_score(text, locale)
    parts = [
        (weights.tone, tone_part),
        (weights.readability, readability),
        (weights.coverage, coverage),
    ]
    if fluency is not None:
        parts.append((weights.fluency, fluency))
    total = sum(w for w, _ in parts)
    overall = sum(w * v for w, v in parts) / total if total > 0 else 0.0
    return QualityReport(
        overall=round(overall, 4),
        fluency=None if fluency is None else round(fluency, 4),
        tone=tone_part,
        readability=readability,
        coverage=round(coverage, 4),
        mean_logprob=None if mean is None else round(mean, 4),
    )
