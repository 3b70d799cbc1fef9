"""Does the copy speak ill of the product it sells?

"BrickCo Rocket Set is awful and cheap junk" passes every other check, so the copy's tone is
scored: VADER (compound) for English, SnowNLP (2*p - 1) for Chinese, both loaded lazily once.

Neither model can be used as is on marketing copy:

- Problem-solution lines name the problem the product removes: "No more tangled cables",
  "Stop wasting time" (VADER -0.60, lower than "awful and cheap junk" at -0.46), "告别杂乱桌面"
  (SnowNLP -0.74). Those phrases (no more X, stop X, never ... again, say goodbye to X,
  tired of X, without X; 告别, 不再, 再也不用, 远离, 拒绝, 无惧 ...) are removed, up to the end of
  their clause, before scoring and before looking for ill words.
- SnowNLP is trained on product reviews and is noisy on short promotional lines: it gives
  "限时3折，仅需19元" -0.91 and "充电五分钟，通话两小时" -0.61, but "这个玩具很垃圾" only -0.12.
  So for Chinese its score is damped by `ZH_MODEL_WEIGHT` (it shades the score but can never
  cross the threshold alone) and the decision comes from a small list of words that speak ill
  of a product (垃圾, 太差, 不要买, 后悔 ...).
- English uses the same kind of list (junk, awful, don't buy, waste of money, falls apart ...),
  because VADER scores "Flimsy and overpriced" and "Cheap plastic that falls apart" 0.0.

A hit from the list caps the score at `LEXICON_SCORE`; `negative` is score <= NEGATIVE_THRESHOLD.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

MAX_CHARS = 4_000
NEGATIVE_THRESHOLD = -0.55  # tuned on tests/unit/generation/test_sentiment.py
LEXICON_SCORE = -0.65  # the score an ill word caps the copy at (below the threshold)
ZH_MODEL_WEIGHT = 0.45  # SnowNLP alone reaches at most -0.45: above the threshold

# Problem-solution openers: the rest of the clause is the problem the product removes.
# At most four words: "No more junk drawers" is a problem, "no ... worst toy" later is not.
_EN_CLAUSE = r"(?:[\s-]{1,3}[\w'’]{1,30}){0,4}"
_EN_PROBLEM_RE = re.compile(
    r"\b(?:no\s+more|never\s+(?:again|worry|run\s+out|lose|miss)|stop|say\s+goodbye\s+to"
    r"|goodbye\s+to|goodbye|bye[\s-]bye|tired\s+of|sick\s+of|fed\s+up\s+with"
    r"|without(?!\s+a\s+doubt)"
    r"|free\s+(?:of|from)|fight|beat|kill|crush|forget|banish|eliminate|ditch|end"
    r"|zero|no|don'?t\s+let|avoid(?!\s+(?:this|it|these|them|buying)\b)|prevent|protects?"
    r"\s+against|resists?|worry[\s-]free|pain[\s-]free|hassle[\s-]free|mess[\s-]free)\b"
    + _EN_CLAUSE
    + r"(?:\s+again)?",
    re.IGNORECASE,
)
# Marketing slang VADER reads as hostile.
_EN_SLANG_RE = re.compile(
    r"\b(?:killer\s+(?:deal|price|look|sound|style)s?|crazy\s+(?:low|good|deals?)"
    r"|insanely\s+\w+|ridiculously\s+\w+|wicked(?:ly)?\s+\w+|stupidly\s+\w+"
    r"|don'?t\s+miss(?:\s+out)?|hurry|limited\s+stock)\b",
    re.IGNORECASE,
)
_EN_ILL_RE = re.compile(
    r"\b(?:junk|garbage|trash|crap|awful|terrible|horrible|worst|useless|flimsy|shoddy"
    r"|cheaply\s+made|cheap\s+(?:junk|plastic|knock-?off|imitation)|falls?\s+apart|fell\s+apart"
    r"|broke(?:\s+after)?|breaks\s+easily|defective|scam|rip-?off|waste\s+of\s+(?:money|time)"
    r"|overpriced|poor\s+quality|low\s+quality|bad\s+quality|disappointing|disappointed"
    r"|don'?t\s+buy|do\s+not\s+buy|never\s+buy|avoid\s+(?:this|it|these|them|buying)"
    r"|regret|not\s+worth|knock-?off|lousy|crappy|pathetic|unusable|rubbish)\b",
    re.IGNORECASE,
)

_ZH_CLAUSE = r"[^，。！？；、,.!?;\s]{0,8}"
_ZH_PROBLEM_RE = re.compile(
    r"(?:告别|不再|再也不用|再也不怕|再也不|从此不|远离|拒绝|无惧|不怕|不伤|摆脱|赶走|解决|防止|避免"
    r"|预防|不用担心|无需担心|不必担心|没有|无需|免去)" + _ZH_CLAUSE
)
_ZH_ILL_RE = re.compile(
    r"垃圾|太差|很差|真差|极差|好差|差劲|差评|质量差|做工差|效果差|烂货|太烂|很烂|坑人|坑爹|被坑"
    r"|骗人|骗钱|骗子|后悔|失望|别买|不要买|千万别|不值|难用|难吃|难闻|粗糙|劣质|假货|山寨|次品"
    r"|一用就坏|容易坏|易坏|坏了|退货|太吵|很吵|又吵|噪音大|有异味|掉色|漏水|鸡肋|智商税"
)


@dataclass(frozen=True)
class SentimentReport:
    score: float  # in [-1, 1]
    negative: bool  # the copy speaks ill of the product


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _snownlp() -> Any:
    from snownlp import SnowNLP

    return SnowNLP


def _is_zh(text: str, locale: str) -> bool:
    cjk = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    letters = sum(1 for c in text if c.isascii() and c.isalpha())
    return locale.startswith("zh") if cjk and letters else cjk > 0


def _strip(pattern: re.Pattern[str], text: str) -> str:
    return re.sub(r"\s+", " ", pattern.sub(" ", text)).strip()


def _en_score(text: str) -> tuple[float, int]:
    rest = _strip(_EN_PROBLEM_RE, _strip(_EN_SLANG_RE, text))
    hits = len(_EN_ILL_RE.findall(rest))
    score = float(_vader().polarity_scores(rest)["compound"]) if rest else 0.0
    return score, hits


def _zh_score(text: str) -> tuple[float, int]:
    rest = _strip(_ZH_PROBLEM_RE, text)
    hits = len(_ZH_ILL_RE.findall(rest))
    if not re.search(r"[\u4e00-\u9fff]", rest):
        return 0.0, hits
    score = 2.0 * float(_snownlp()(rest).sentiments) - 1.0
    return ZH_MODEL_WEIGHT * score, hits


def score_sentiment(text: str, locale: str) -> SentimentReport:
    """The copy's tone in [-1, 1] and whether it speaks ill of the product."""
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS]).strip()
    if not text:
        return SentimentReport(0.0, False)
    if _is_zh(text, locale):
        score, hits = _zh_score(text)
        # Mixed copy ("BrickCo火箭 is junk"): English ill words count too.
        hits += len(_EN_ILL_RE.findall(_strip(_EN_PROBLEM_RE, text)))
    else:
        score, hits = _en_score(text)
    if hits:
        score = min(score, LEXICON_SCORE)
    score = max(-1.0, min(1.0, round(score, 4)))
    return SentimentReport(score, score <= NEGATIVE_THRESHOLD)
