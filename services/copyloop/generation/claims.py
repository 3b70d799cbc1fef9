"""Hard claims in generated copy (prices, discounts, numbers, offers, deadlines, ranks), checked
against the item's data.

Marketing copy must be true: "now 90% off, only $1.99" for an undiscounted $6.49 item is a
false advertisement whatever its tone. The banned-term list in `compliance` cannot see that, so
this module finds every claim a shopper could hold us to and compares it with `ItemFacts`:

- price: a currency amount ($12.99, 12.99 USD, ¥99, 99元, 99美元, 九十九元, 到手价99) equals
  the price, the list price, the saving (list - price) or the promotion's price, within
  half a cent/fen; a former price ("was $X", "originally", "原价X元") must be a list price above
  what the shopper pays now (or the regular price during a promotion); "under $20" /
  "不到20元" needs the price to be at most the amount; an amount in another currency than the
  item's is false.
- discount: "N% off", "save N%", "N% discount", "N折" (75折 = 7.5折 = 25% off, 3折 = 70% off),
  "半价" equal the list-price discount or the promotion's `discount_pct`, rounded down or up
  to a whole percent.
- saving: "save $N", "$N off", "立省N元", "省N元", "立减N元" equal list - price (or the
  promotion's saving).
- number: a number with a unit (minutes, hours, L, ml, W, V, mAh, cm, mm, kg, g, GB,
  pieces/pcs/件/块, packs, experiments, %) and ages ("8+", "ages 8 and up", "8岁以上", "8岁+")
  appear in the title, selling points or attributes with the same value in a compatible unit
  ("2 hours" = "120 min"); "500+ pieces" only needs at least 500.
- offer: free shipping / 包邮 / 免运费, buy one get one / BOGO / 买一送一, free gift / 赠品 /
  买…送 need the promotion's offer or a selling point/attribute making the same offer.
- time_limit: today only, limited time, ends tonight, 限时, 今日, 仅限今天, 倒计时 need a
  promotion with an `end_time`.
- superlative: #1, No. 1, number one, best, best-selling, lowest price, cheapest, 第一, 最…,
  全网最低, 国家级, 销量冠军 need a selling point/attribute with a claim of the same family
  (a "#1 best seller" selling point supports "best-selling" and "No. 1").

Whatever appears verbatim (case, width and spacing folded) in the title, brand, category,
a selling point or an attribute is supported: "2-pack" in a "Socks 2-Pack" title is no claim of
ours. Plain numbers without a unit (model numbers) are not claims at all.

Matching runs on NFKC-folded text (full-width digits and letters become ASCII) with a map back
to the caller's character offsets; every regex is linear-time (no nested quantifiers) and the
input is capped at `MAX_CHARS`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from price_parser import Price

from copyloop.generation.confusables import fold_confusables, skeleton
from copyloop.generation.prompts.brief import CopyBrief

MAX_CHARS = 4_000  # longer input is checked up to here (copy is far shorter)
PRICE_TOLERANCE = 0.005  # half a cent / fen
CLAIM_KINDS = ("price", "discount", "saving", "number", "offer", "time_limit", "superlative")
OFFER_KINDS = ("free_shipping", "bogo", "gift")


@dataclass(frozen=True)
class Promotion:
    """An optional promotion the shop runs for this item."""

    discount_pct: float = 0.0  # 0 = none; 25.0 = 25% off (75折)
    offers: tuple[str, ...] = ()  # any of "free_shipping", "bogo", "gift"
    end_time: float | None = None  # epoch seconds; a time-limit claim needs a promotion with one
    description: str = ""


@dataclass(frozen=True)
class ItemFacts:
    """What the copy may claim: the item's own data plus any running promotion."""

    title: str
    brand: str
    price: float
    list_price: float | None
    currency: str  # "USD", "CNY"
    attributes: tuple[tuple[str, str], ...] = ()
    selling_points: tuple[str, ...] = ()
    category_path: tuple[str, ...] = ()
    promotion: Promotion | None = None

    @classmethod
    def from_brief(cls, brief: CopyBrief, promotion: Promotion | None = None) -> ItemFacts:
        return cls(
            title=brief.item_title,
            brand=brief.brand,
            price=brief.price,
            list_price=brief.list_price,
            currency=brief.currency,
            attributes=tuple(brief.attributes),
            selling_points=tuple(brief.selling_points),
            category_path=tuple(brief.category_path),
            promotion=promotion,
        )


@dataclass(frozen=True)
class Claim:
    kind: str  # one of CLAIM_KINDS
    text: str  # the claim as written in the copy
    start: int  # character offsets into the checked text
    end: int
    value: float | None = None  # amount, percent off, or number in the written unit


@dataclass(frozen=True)
class ClaimFinding:
    """A claim the item's data does not support."""

    kind: str
    claim: str
    start: int
    end: int
    message: str  # what the data says instead


# --- patterns -------------------------------------------------------------------------------

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # 1,299.99 | 19.9 | 520
_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_NUM = rf"[{_CN_DIGITS}十百千万]+(?:点[{_CN_DIGITS}]+)?"  # 九十九, 两千五百, 七点五
# A Chinese numeral starts after any non-numeral (and not after 第, an ordinal): one start per
# run keeps the scan linear.
_ANY_NUM = rf"(?:(?<![A-Za-z0-9.]){_NUM}万?|(?<![0-9{_CN_DIGITS}十百千万点第]){_CN_NUM})"
_LATIN_END = r"(?![A-Za-z])"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_CLAUSE = r"[^\s,.!?;:，。！？；：、]"  # one character inside a clause

_CURRENCY_PREFIX = r"(?:US\$|\$|¥|(?i:usd|cny|rmb)\s?)"
_CURRENCY_SUFFIX = (
    rf"(?:美元|美金|块钱|元(?![素旦宵气])|(?i:dollars?|bucks|usd|cny|rmb|yuan){_LATIN_END})"
)
_AMOUNT = (
    rf"(?:{_CURRENCY_PREFIX}\s?{_NUM}(?:\s?(?i:usd|cny){_LATIN_END})?"
    rf"|{_ANY_NUM}\s?{_CURRENCY_SUFFIX})"
)

# Unit spelling -> (unit class, factor to the class's base unit). Longest spellings first in
# the regex so "mins" is not read as "m".
_UNITS: dict[str, tuple[str, float]] = {
    "seconds": ("time", 1),
    "second": ("time", 1),
    "secs": ("time", 1),
    "sec": ("time", 1),
    "minutes": ("time", 60),
    "minute": ("time", 60),
    "mins": ("time", 60),
    "min": ("time", 60),
    "hours": ("time", 3600),
    "hour": ("time", 3600),
    "hrs": ("time", 3600),
    "hr": ("time", 3600),
    "h": ("time", 3600),
    "days": ("time", 86400),
    "day": ("time", 86400),
    "weeks": ("time", 604800),
    "week": ("time", 604800),
    "years": ("time", 31536000),
    "year": ("time", 31536000),
    "秒钟": ("time", 1),
    "秒": ("time", 1),
    "分钟": ("time", 60),
    "小时": ("time", 3600),
    "天": ("time", 86400),
    "liters": ("volume", 1000),
    "litres": ("volume", 1000),
    "liter": ("volume", 1000),
    "litre": ("volume", 1000),
    "l": ("volume", 1000),
    "milliliters": ("volume", 1),
    "millilitres": ("volume", 1),
    "ml": ("volume", 1),
    "毫升": ("volume", 1),
    "升": ("volume", 1000),
    "watts": ("power", 1),
    "watt": ("power", 1),
    "w": ("power", 1),
    "kw": ("power", 1000),
    "瓦": ("power", 1),
    "volts": ("voltage", 1),
    "volt": ("voltage", 1),
    "v": ("voltage", 1),
    "伏": ("voltage", 1),
    "mah": ("charge", 1),
    "毫安时": ("charge", 1),
    "毫安": ("charge", 1),
    "mm": ("length", 1),
    "cm": ("length", 10),
    "m": ("length", 1000),
    "inches": ("length", 25.4),
    "inch": ("length", 25.4),
    "feet": ("length", 304.8),
    "foot": ("length", 304.8),
    "ft": ("length", 304.8),
    "毫米": ("length", 1),
    "厘米": ("length", 10),
    "米": ("length", 1000),
    "kg": ("mass", 1000),
    "kilograms": ("mass", 1000),
    "g": ("mass", 1),
    "grams": ("mass", 1),
    "gram": ("mass", 1),
    "lbs": ("mass", 453.592),
    "lb": ("mass", 453.592),
    "pounds": ("mass", 453.592),
    "oz": ("mass", 28.3495),
    "ounces": ("mass", 28.3495),
    "千克": ("mass", 1000),
    "公斤": ("mass", 1000),
    "克": ("mass", 1),
    "tb": ("storage", 1024),
    "gb": ("storage", 1),
    "pieces": ("pieces", 1),
    "piece": ("pieces", 1),
    "pcs": ("pieces", 1),
    "pc": ("pieces", 1),
    "件": ("pieces", 1),
    "块": ("pieces", 1),
    "片": ("pieces", 1),
    "颗": ("pieces", 1),
    "粒": ("pieces", 1),
    "packs": ("pack", 1),
    "pack": ("pack", 1),
    "pk": ("pack", 1),
    "experiments": ("experiments", 1),
    "experiment": ("experiments", 1),
    "projects": ("experiments", 1),
    "activities": ("experiments", 1),
    "实验": ("experiments", 1),
    "%": ("percent", 1),
}
# Case matters for a few Latin units: "5G" is a network, "5g" five grams; "M" is a million.
_UNIT_RE_ALTS = (
    r"(?i:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|years?|liters?|litres?"
    r"|millilit(?:er|re)s|watts?|volts?|mah|kw|inch(?:es)?|feet|foot|ft|kilograms|grams?"
    r"|lbs?|pounds|ounces|oz|pieces?|pcs|packs?|pk|experiments?|projects|activities)"
    rf"{_LATIN_END}"
    rf"|(?:ml|mL|ML|h|L|l|[Ww]|[Vv]|mm|cm|m|kg|KG|Kg|g|GB|TB|gb|PCS|PC|pc){_LATIN_END}"
    r"|秒钟|秒|分钟|小时|天|毫升|升|瓦|伏|毫安时|毫安|毫米|厘米|米|千克|公斤|克"
    r"|件(?!套)|块(?!钱)|片|颗|粒|[个项种][\u4e00-\u9fff]{0,3}?实验|%"
)
_RANGE_SEP = r"\s?(?:-|–|~|to|至|到)\s?"

# Attribute keys that name the unit of a bare-number value: ("pieces", "520").
_KEY_UNITS: dict[str, tuple[str, float]] = {
    "pieces": ("pieces", 1),
    "piece": ("pieces", 1),
    "pcs": ("pieces", 1),
    "件数": ("pieces", 1),
    "块数": ("pieces", 1),
    "颗粒数": ("pieces", 1),
    "片数": ("pieces", 1),
    "experiments": ("experiments", 1),
    "projects": ("experiments", 1),
    "hours": ("time", 3600),
    "minutes": ("time", 60),
    "ml": ("volume", 1),
    "liters": ("volume", 1000),
    "watts": ("power", 1),
    "wattage": ("power", 1),
    "功率": ("power", 1),
    "volts": ("voltage", 1),
    "voltage": ("voltage", 1),
    "电压": ("voltage", 1),
    "mah": ("charge", 1),
    "kg": ("mass", 1000),
    "grams": ("mass", 1),
    "cm": ("length", 10),
    "mm": ("length", 1),
    "gb": ("storage", 1),
    "pack": ("pack", 1),
}
_AGE_KEYS = frozenset(
    ["age", "ages", "age_range", "min_age", "recommended_age", "年龄", "适用年龄"]
)

_SUPERLATIVES: tuple[tuple[str, str], ...] = (
    # (family, pattern); earlier families win overlaps ("best price" is a price claim).
    (
        "price",
        r"(?i:lowest\s(?:price|prices)|cheapest|best\sprices?|unbeatable\sprices?|best\sdeal)"
        r"|全网最低|全网底价|最低价|最低|最便宜|史低",
    ),
    (
        "rank",
        r"(?<![\w#])#\s?1(?!\d)|(?i:no\.\s?1)(?!\d)|(?i:number\s(?:one|1)\b)|(?i:top\s?1)(?!\d)"
        r"|(?i:best[\s-]?sell(?:er|ers|ing)|top[\s-]sell(?:er|ers|ing))"
        r"|(?i:no\s?1)(?![\d\w])|销量冠军|销冠|冠军|(?i:top)\s?1(?!\d)"
        r"|第一(?![次步天眼代季章册件批个本集节课])",
    ),
    ("award", r"国家级|世界级|(?i:award[\s-]winning|world[\s-]class)"),
    (
        "popularity",
        r"(?i:most\s(?:popular|loved|wanted)|fan\sfavou?rite|customer\sfavou?rite)"
        r"|最受欢迎|人气王",
    ),
    (
        "quality",
        r"(?i:\bbest\b(?![\s-](?:before|by)\b)|\bfinest\b|top[\s-]rated|highest[\s-]rated"
        r"|\bunbeatable\b)|最好|最佳|最强|顶级|顶尖|极致",
    ),
    ("quality", rf"最(?![近后终初])[{_CJK}]{{0,2}}"),
)
# A rank in the data ("#1 best seller") also supports a popularity claim ("most popular").
_RANK_SUPPORTS = {"rank": ("rank", "popularity")}

_OFFERS: tuple[tuple[str, str], ...] = (
    (
        "bogo",
        r"(?i:buy\s(?:one|1),?\sget\s(?:one|1)(?:\sfree)?|\bbogo\b|\bb1g1\b|two\sfor\sone"
        r"|2\sfor\s1)|买[一二两三1-3][送赠][一1]",
    ),
    (
        "free_shipping",
        r"(?i:free\s(?:shipping|delivery)|ships\sfree|free\s\d-day\sshipping)"
        r"|包邮|免运费|免邮|免费配送|免费送货",
    ),
    (
        "gift",
        r"(?i:free\sgifts?|bonus\sgifts?|gift\swith\spurchase|comes\swith\sa\sfree)"
        rf"|赠品|赠送|加赠|附赠|买{_CLAUSE}{{1,6}}?送|[加再还即就]送|下单送|免费送",
    ),
)

_TIME_LIMITS = (
    r"(?i:today\sonly|tonight\sonly|one\sday\sonly|this\sweekend\sonly|weekend\sonly"
    r"|deal\sof\sthe\sday|limited[\s-]time|for\sa\slimited\stime|flash\ssale|last\schance"
    r"|ends\s(?:tonight|today|soon|at\smidnight|tomorrow|sunday|this\sweekend)|ending\ssoon"
    r"|(?:offer|sale|deal)\s(?:ends|expires)(?:\sin\s\d{1,2}\s(?:hours?|days?|minutes?))?|expires\s(?:today|tonight|soon)"
    r"|(?:before|until)\smidnight|countdown|\d{1,2}\shours?\sonly"
    r"|only\s\d{1,2}\s(?:hours?|days?)\s(?:left|to\sgo)|ends\sin\s\d{1,2}\s(?:hours?|days?|minutes?))"
    r"|限时|今日|仅限今天|只限今天|仅今天|只有今天|今天截止|今晚截止|今晚\d{1,2}点(?:截止|结束)"
    r"|倒计时|最后一天|仅此一天|活动截止|即将结束|马上结束|秒杀|错过再等"
    r"|[仅还]剩\d{1,2}\s?(?:天|小时)|恢复原价"
)


@dataclass(frozen=True)
class _Found:
    """A claim plus what checking it needs."""

    claim: Claim
    tag: str = ""  # unit class, offer kind or superlative family
    values: tuple[float, ...] = ()  # in the base unit (numbers) or as written (money, %)
    currency: str | None = None  # "USD" | "CNY" for money claims with a currency marker
    compare: str = "eq"  # eq | at_most (under $20) | at_least (500+ pieces) | was ("was $X")


_Handler = Callable[[re.Match[str]], tuple[str, tuple[float, ...], str | None, str] | None]


# --- folding and number parsing -------------------------------------------------------------


_CLAUSE_MARKS = frozenset("，。、；：")


def _fold_with_map(text: str) -> tuple[str, list[int]]:
    """NFKC per character (case kept), with each folded character's index in `text`."""
    parts: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        # A full-width comma or full stop ends a clause in Chinese; folded to "," or "." it
        # would read "¥99，420块" as ¥99,420. It stays a clause mark.
        # Look-alike letters ("Bеst" with a Cyrillic е) and invisible characters are folded
        # too, so a claim cannot hide from the patterns behind them.
        folded = (
            ch
            if ch.isascii() or ch in _CLAUSE_MARKS
            else fold_confusables(unicodedata.normalize("NFKC", ch))
        )
        parts.append(folded)
        index.extend([i] * len(folded))
    index.append(len(text))
    return "".join(parts), index


def _dense(text: str) -> str:
    """Verbatim-comparison form: NFKC, look-alikes folded, case-folded, no whitespace."""
    return re.sub(r"\s+", "", skeleton(text))


@cache
def _cn2an() -> Any:
    import cn2an  # lazy: only Chinese numerals need it

    return cn2an


def _number(text: str) -> float | None:
    """An Arabic ("1,299.5") or Chinese ("九十九", "七点五") number."""
    text = text.strip()
    if not text:
        return None
    if text[0].isdigit():
        scale = 10_000.0 if text.endswith("万") else 1.0  # 10万件 = 100,000 pieces
        try:
            return float(text.rstrip("万").replace(",", "")) * scale
        except ValueError:
            return None
    try:
        return float(_cn2an().cn2an(text, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


_NUM_IN_RE = re.compile(rf"{_NUM}|{_CN_NUM}")


def _amount(text: str) -> tuple[float | None, str | None]:
    """(value, "USD"|"CNY"|None) of a written amount such as "$1,299.99" or "九十九元"."""
    lowered = text.casefold()
    currency: str | None = None
    if "$" in text or "美元" in text or "美金" in text or re.search(r"dollar|bucks|usd", lowered):
        currency = "USD"
    elif "¥" in text or "元" in text or "块钱" in text or re.search(r"cny|rmb|yuan", lowered):
        currency = "CNY"
    if re.search(r"\d", text) and "万" not in text:
        price = Price.fromstring(text, decimal_separator=".")
        if price.amount is not None:
            return float(price.amount), currency
    match = _NUM_IN_RE.search(text)
    return (_number(match.group()) if match else None), currency


_CN_DIGIT_VALUES = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


def _zhe_pct_off(text: str) -> float | None:
    """Percent off of an N折 figure: 3 -> 70, 7.5 / 75 / 七五 / 七点五 -> 25."""
    text = text.strip()
    if text and not text[0].isdigit():
        try:
            text = "".join("." if c == "点" else str(_CN_DIGIT_VALUES[c]) for c in text)
        except KeyError:
            return None
    try:
        value = float(text)
    except ValueError:
        return None
    if 0 < value < 10:
        return round(100 - value * 10, 6)
    if 10 <= value < 100 and value == int(value):
        return 100 - value
    return None


# --- the claim scanners ---------------------------------------------------------------------


def _money(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    value, currency = _amount(match.group("amt"))
    return None if value is None else ("", (value,), currency, "eq")


def _money_under(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    found = _money(match)
    return None if found is None else ("", found[1], found[2], "at_most")


def _was_price(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    groups = match.groupdict()
    amount = groups.get("amt") or groups.get("amt2")
    value, currency = _amount(amount) if amount else (None, None)
    if value is None and groups.get("n"):
        value = _number(groups["n"])
    return None if value is None else ("", (value,), currency, "was")


def _bare_price(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    value = _number(match.group("n"))
    return None if value is None else ("", (value,), None, "eq")


def _pct(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    value = _number(match.group("n"))
    return None if value is None else ("", (value,), None, "eq")


def _half(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    return ("", (50.0,), None, "eq")


def _zhe(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    value = _zhe_pct_off(match.group("n") or match.group("c") or "")
    return None if value is None else ("", (value,), None, "eq")


def _any_discount(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    return "sale", (), None, "any"


# A discount said in words, without a figure ("Price drop:", "on sale", 特价): true only when the
# item is cheaper than its list price or a promotion lowers it.
_SALE_WORDS = (
    r"(?i:\bprice[\s-]?drops?\b|\bprices?\s(?:drop(?:ped|s)?|cut|slashed|reduced)\b"
    r"|\bon\s(?:sale|special)\b|\bsale\sprices?\b|\bmarked\sdown\b|\bmark-?downs?\b"
    r"|\breduced\b|\bprice\s(?:cut|reduction)s?\b|\bclearance\b|\bdiscount(?:s|ed)?\b"
    r"|\b(?:big|huge|great|extra|massive)\ssavings\b|\bnow\scheaper\b|\bcheaper\sthan\sever\b)"
    r"|降价|直降|特价|特惠|打折|折扣|清仓|减价|让利|优惠价"
)


def _tagged(tag: str) -> _Handler:
    def handler(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
        return (tag, (), None, "eq")

    return handler


def _age(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    low = _number(match.group("n"))
    if low is None or low > 21:
        return None
    high = _number(match.group("n2")) if match.groupdict().get("n2") else None
    return ("age", (low,) if high is None else (low, high), None, "eq")


def _quantity(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    unit = match.group("unit")
    if unit.endswith("实验"):  # 个实验, 个科学实验, 项实验
        unit = "实验"
    unit_class, factor = _UNITS.get(unit, _UNITS.get(unit.casefold(), ("", 0.0)))
    if not unit_class:
        return None
    low = _number(match.group("n"))
    if low is None:
        return None
    written = match.group("n")
    if unit_class == "pieces" and not written[0].isdigit() and low == 1:
        return None  # 一件 / 一块 / 一片: "a", not a count
    values = [low * factor]
    if match.group("n2"):
        high = _number(match.group("n2"))
        if high is None:
            return None
        values.append(high * factor)
    plus = bool(match.group("plus"))
    return (unit_class, tuple(values), None, "at_least" if plus else "eq")


def _at_least(match: re.Match[str]) -> tuple[str, tuple[float, ...], str | None, str] | None:
    found = _quantity(match)
    return None if found is None else (found[0], found[1], None, "at_least")


_AGE_TAIL = (
    r"(?:\+\s?(?i:years?|yrs)(?:\s?old)?"
    r"|\s?(?i:years?|yrs)(?:\s?old)?\s?(?:\+|(?i:and\sup|and\solder|and\sover|or\solder))"
    r"|\s?(?i:and\sup|and\solder|and\sover)|[\s-]?(?i:years?[\s-]old|year-old))"
)

# (kind, pattern, handler) in priority order: a span taken by an earlier pattern is not
# claimed again by a later one ("save $5" is one saving claim, not also a price claim).
_SCANNERS: tuple[tuple[str, str, _Handler], ...] = (
    (
        "saving",
        r"(?:(?i:you\ssave|save|saving|savings\sof)\s(?:(?i:up\sto|an\sextra|extra|over)\s)?"
        rf"|(?:立省|省下|节省|立减|直降|省|减|便宜|优惠|降)\s?)(?P<amt>{_AMOUNT})",
        _money,
    ),
    ("saving", rf"(?P<amt>{_AMOUNT})\s?(?i:off){_LATIN_END}", _money),
    (
        "discount",
        rf"(?<![A-Za-z0-9.])(?P<n>{_NUM})\s?(?:%|(?i:percent|per\scent))\s?"
        r"(?i:off|discount|savings?)(?![A-Za-z])",
        _pct,
    ),
    (
        "discount",
        r"(?:(?i:save|saving|savings\sof|discount\sof)\s(?:(?i:up\sto|an\sextra|extra)\s)?"
        r"|(?:立省|省|立减|减|优惠|降价|便宜|直降|折扣|让利)\s?)"
        rf"(?P<n>{_NUM})\s?(?:%|(?i:percent|per\scent))",
        _pct,
    ),
    ("discount", rf"(?<![A-Za-z0-9.])(?P<n>{_NUM})\s?%\s?(?:优惠|折扣)", _pct),
    (
        "discount",
        rf"(?:(?<![A-Za-z0-9.])(?P<n>\d{{1,2}}(?:\.\d)?)|(?P<c>[{_CN_DIGITS[2:]}](?:点?[{_CN_DIGITS[2:]}])?))"
        r"\s?折(?![叠痕纸])",
        _zhe,
    ),
    ("discount", r"(?i:half[\s-](?:price|off)|50/50)|半价", _half),
    (
        # A former price ("was $X", "原价99元") says the item is cheaper now: it needs a real
        # list price above what the shopper pays, and names that list price.
        "price",
        r"(?:(?<![A-Za-z])(?i:was|originally|regularly|reg\.?|formerly|list\sprice|compare\sat|rrp|msrp)"
        rf"[\s:]\s?(?P<amt>{_AMOUNT})"
        r"|(?:原价|原售价|划线价|市场价|专柜价)\s?[:：]?\s?"
        rf"(?:(?P<amt2>{_AMOUNT})|(?P<n>{_NUM})(?![\d.A-Za-z{_CJK}%])))",
        _was_price,
    ),
    (
        "price",
        rf"(?:(?i:under|below|less\sthan|for\sless\sthan|for\sunder)\s|不到|不足|低于)(?P<amt>{_AMOUNT})",
        _money_under,
    ),
    ("price", rf"(?P<amt>{_AMOUNT})\s?(?:以下|以内)", _money_under),
    ("price", rf"(?P<amt>{_AMOUNT})", _money),
    (
        "price",
        r"(?:到手价|券后价|售价|现价|原价|特价|仅需|只需|只要|仅售|低至|秒杀价)\s?[:：]?\s?"
        rf"(?P<n>{_NUM})(?![\d.A-Za-z{_CJK}%])",
        _bare_price,
    ),
    ("discount", _SALE_WORDS, _any_discount),
    ("time_limit", _TIME_LIMITS, _tagged("")),
    *(("offer", pattern, _tagged(kind)) for kind, pattern in _OFFERS),
    *(("superlative", pattern, _tagged(family)) for family, pattern in _SUPERLATIVES),
    (
        "number",
        rf"(?<![A-Za-z])(?i:ages?)\s?(?P<n>{_NUM})"
        rf"(?:{_RANGE_SEP}(?P<n2>{_NUM}))?(?:\s?\+|\s(?i:and\sup|and\solder|and\sover))?",
        _age,
    ),
    ("number", rf"(?<![A-Za-z0-9.])(?P<n>{_NUM}){_AGE_TAIL}", _age),
    (
        "number",
        rf"(?P<n>{_ANY_NUM})(?:{_RANGE_SEP}(?P<n2>{_ANY_NUM}))?\s?(?:周岁|岁)"
        r"(?:\s?(?:以上|及以上|\+|起))?",
        _age,
    ),
    (
        "number",
        r"(?:(?<![A-Za-z])(?i:over|more\sthan|at\sleast)\s|超过|多达)"
        rf"(?P<n>{_ANY_NUM})(?:{_RANGE_SEP}(?P<n2>{_ANY_NUM}))?(?P<plus>\+)?[\s-]?"
        rf"(?P<unit>{_UNIT_RE_ALTS})",
        _at_least,
    ),
    (
        "number",
        rf"(?P<n>{_ANY_NUM})(?:{_RANGE_SEP}(?P<n2>{_ANY_NUM}))?(?P<plus>\+)?[\s-]?"
        rf"(?P<unit>{_UNIT_RE_ALTS})",
        _quantity,
    ),
    ("number", r"(?<![A-Za-z0-9.$¥])(?P<n>\d{1,2})\+(?![\d%])", _age),
)


@cache
def _compiled() -> tuple[tuple[str, re.Pattern[str], _Handler], ...]:
    return tuple((kind, re.compile(pattern), handler) for kind, pattern, handler in _SCANNERS)


def _scan(text: str) -> list[_Found]:
    """Every claim in `text` (capped at MAX_CHARS), in text order, spans into `text`."""
    text = text[:MAX_CHARS]
    folded, index = _fold_with_map(text)
    taken: list[tuple[int, int]] = []
    found: list[_Found] = []
    for kind, pattern, handler in _compiled():
        for match in pattern.finditer(folded):
            start, end = match.span()
            if start == end or any(s < end and start < e for s, e in taken):
                continue
            parsed = handler(match)
            if parsed is None:
                continue
            tag, values, currency, compare = parsed
            o_start, o_end = index[start], index[end - 1] + 1
            value = values[0] if values else None
            if kind == "number" and values:
                value = _number(match.group("n")) if "n" in match.groupdict() else value
            claim = Claim(kind, text[o_start:o_end], o_start, o_end, value)
            found.append(_Found(claim, tag, values, currency, compare))
            taken.append((start, end))
    found.sort(key=lambda f: (f.claim.start, f.claim.end))
    return found


def find_claims(text: str, locale: str) -> list[Claim]:
    """Every hard claim in `text`, in text order.

    Both locales' patterns apply to every copy (copy mixes scripts: "LEGO #1热卖"), so
    `locale` only names the copy's language for callers; it does not narrow the search.
    """
    return [f.claim for f in _scan(text)]


# --- what the data supports ------------------------------------------------------------------


@dataclass(frozen=True)
class _Support:
    texts: tuple[str, ...]  # dense forms for the verbatim rule
    quantities: frozenset[tuple[str, float]]  # (unit class, value in base unit)
    offers: frozenset[str]
    families: frozenset[str]


def _support_texts(facts: ItemFacts) -> list[str]:
    texts = [facts.title, facts.brand, *facts.selling_points, *facts.category_path]
    for key, value in facts.attributes:
        texts.extend([value, f"{key}: {value}", f"{value} {key}"])
    if facts.promotion and facts.promotion.description:
        texts.append(facts.promotion.description)
    return [t for t in texts if t and t.strip()]


def _key_unit(key: str) -> tuple[str, float] | None:
    folded = unicodedata.normalize("NFKC", key).casefold()
    if folded in _AGE_KEYS or any(t in _AGE_KEYS for t in re.split(r"[\s_\-]+", folded)):
        return ("age", 1.0)
    if folded in _KEY_UNITS:
        return _KEY_UNITS[folded]
    for token in re.split(r"[\s_\-()]+", folded):
        if token in _KEY_UNITS:
            return _KEY_UNITS[token]
    return None


def _support(facts: ItemFacts) -> _Support:
    texts = _support_texts(facts)
    quantities: set[tuple[str, float]] = set()
    offers: set[str] = set()
    families: set[str] = set()
    for text in texts:
        for item in _scan(text):
            if item.claim.kind == "number":
                quantities.update((item.tag, v) for v in item.values)
            elif item.claim.kind == "offer":
                offers.add(item.tag)
            elif item.claim.kind == "superlative":
                families.update(_RANK_SUPPORTS.get(item.tag, (item.tag,)))
    for key, value in facts.attributes:
        unit = _key_unit(key)
        if unit is None:
            continue
        numbers = [_number(n) for n in re.findall(_NUM, unicodedata.normalize("NFKC", value))]
        quantities.update((unit[0], n * unit[1]) for n in numbers[:2] if n is not None)
    if facts.promotion:
        offers.update(facts.promotion.offers)
    return _Support(
        tuple(_dense(t) for t in texts),
        frozenset(quantities),
        frozenset(offers),
        frozenset(families),
    )


def _whole_pct_match(claimed: float, actual: float) -> bool:
    """Rounded down or up to a whole percent (23.08% may be told as 23% or 24%)."""
    eps = 1e-6
    return math.floor(actual + eps) - eps <= claimed <= math.ceil(actual - eps) + eps


def _symbol(currency: str) -> str:
    return {"USD": "$", "CNY": "¥"}.get(currency.upper(), currency.upper() + " ")


def _fmt_money(value: float, currency: str) -> str:
    return f"{_symbol(currency)}{value:,.2f}"


def _fmt_pct(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


class _Checker:
    """Checks claims against one item's facts; derived figures computed once."""

    def __init__(self, facts: ItemFacts) -> None:
        self.facts = facts
        self.support = _support(facts)
        price = facts.price
        list_price = facts.list_price
        promo = facts.promotion.discount_pct if facts.promotion else 0.0
        self.discounts: list[float] = []
        self.savings: list[float] = []
        self.current: list[float] = [price]  # what the shopper pays now
        self.prices: list[float] = [price]  # amounts a price claim may name
        if list_price is not None and list_price > price:
            self.discounts.append((list_price - price) / list_price * 100)
            self.savings.append(list_price - price)
        if list_price is not None and list_price > 0:
            self.prices.append(list_price)
        if 0 < promo < 100:
            promo_price = price * (1 - promo / 100)
            self.discounts.append(promo)
            self.savings.append(price - promo_price)
            self.prices.append(promo_price)
            self.current.append(promo_price)
            if list_price is not None and list_price > promo_price:
                self.discounts.append((list_price - promo_price) / list_price * 100)
                self.savings.append(list_price - promo_price)

    def price_words(self) -> str:
        facts = self.facts
        words = f"the price is {_fmt_money(facts.price, facts.currency)}"
        if facts.list_price is not None and facts.list_price > facts.price:
            words += f" (was {_fmt_money(facts.list_price, facts.currency)})"
        if facts.promotion and facts.promotion.discount_pct > 0:
            words += f" with a {_fmt_pct(facts.promotion.discount_pct)} promotion"
        return words

    def discount_words(self) -> str:
        if not self.discounts:
            return "the item has no discount"
        return "the discount is " + " or ".join(_fmt_pct(round(d, 2)) for d in self.discounts)

    def check(self, item: _Found) -> str | None:
        """None when supported, else the message."""
        claim = item.claim
        if _dense(claim.text) and any(_dense(claim.text) in t for t in self.support.texts):
            return None
        handler = getattr(self, f"_check_{claim.kind}")
        message: str | None = handler(item)
        return message

    def _currency_mismatch(self, item: _Found) -> str | None:
        currency = self.facts.currency.upper()
        if item.currency and currency in ("USD", "CNY") and item.currency != currency:
            return (
                f"says {item.claim.text.strip()} but the item is priced in {currency}: "
                + self.price_words()
            )
        return None

    def _check_price(self, item: _Found) -> str | None:
        mismatch = self._currency_mismatch(item)
        if mismatch:
            return mismatch
        claimed = item.values[0]
        if item.compare == "was":
            # Former prices: the list price when above what is paid now, and the regular price
            # while a promotion lowers it.
            now = min(self.current)
            former = [p for p in self.prices if p > now + PRICE_TOLERANCE]
            if former:
                if any(abs(claimed - p) <= PRICE_TOLERANCE + 1e-9 for p in former):
                    return None
                return f"says {item.claim.text.strip()} but {self.price_words()}"
            return (
                f"says {item.claim.text.strip()} but the item was never priced higher "
                f"({self.price_words()})"
            )
        if item.compare == "at_most":
            if min(self.current) <= claimed + PRICE_TOLERANCE:
                return None
        elif any(abs(claimed - p) <= PRICE_TOLERANCE + 1e-9 for p in self.prices + self.savings):
            return None
        return f"says {item.claim.text.strip()} but {self.price_words()}"

    def _check_saving(self, item: _Found) -> str | None:
        mismatch = self._currency_mismatch(item)
        if mismatch:
            return mismatch
        claimed = item.values[0]
        if any(abs(claimed - s) <= PRICE_TOLERANCE + 1e-9 for s in self.savings):
            return None
        if not self.savings:
            said = item.claim.text.strip()
            return f"says {said} but the item has no discount ({self.price_words()})"
        saving = " or ".join(_fmt_money(s, self.facts.currency) for s in self.savings)
        return f"says {item.claim.text.strip()} but the saving is {saving}"

    def _check_discount(self, item: _Found) -> str | None:
        if not item.values:  # "Price drop", "on sale", 特价: any real discount supports it
            if self.discounts:
                return None
            said = item.claim.text.strip()
            return f"says {said} but the item has no discount ({self.price_words()})"
        claimed = item.values[0]
        if any(_whole_pct_match(claimed, d) for d in self.discounts):
            return None
        return (
            f"says {item.claim.text.strip()} ({_fmt_pct(claimed)} off) but {self.discount_words()}"
        )

    def _check_number(self, item: _Found) -> str | None:
        have = [v for unit, v in self.support.quantities if unit == item.tag]

        def ok(value: float, at_least: bool) -> bool:
            if at_least:
                return any(h >= value - 1e-9 for h in have)
            return any(abs(h - value) <= 1e-6 * max(1.0, abs(h)) for h in have)

        at_least = item.compare == "at_least"
        if all(ok(v, at_least) for v in item.values):
            return None
        what = "age" if item.tag == "age" else item.tag
        if not have:
            return f"says {item.claim.text.strip()} but the item data gives no {what}"
        return f"says {item.claim.text.strip()} but the item data does not give that {what}"

    def _check_offer(self, item: _Found) -> str | None:
        if item.tag in self.support.offers:
            return None
        label = item.tag.replace("_", " ")
        return f"says {item.claim.text.strip()} but no promotion or selling point offers {label}"

    def _check_time_limit(self, item: _Found) -> str | None:
        promotion = self.facts.promotion
        if promotion is not None and promotion.end_time is not None:
            return None
        return f"says {item.claim.text.strip()} but there is no promotion with an end time"

    def _check_superlative(self, item: _Found) -> str | None:
        if item.tag in self.support.families:
            return None
        return (
            f"says {item.claim.text.strip()} but no selling point or attribute "
            f"supports a {item.tag} claim"
        )


def check_claims(text: str, facts: ItemFacts, locale: str) -> list[ClaimFinding]:
    """Claims in `text` the facts do not support, in text order; [] = all supported."""
    found = _scan(text)
    if not found:
        return []
    checker = _Checker(facts)
    findings: list[ClaimFinding] = []
    for item in found:
        message = checker.check(item)
        if message is not None:
            c = item.claim
            findings.append(ClaimFinding(c.kind, c.text, c.start, c.end, message))
    return findings
