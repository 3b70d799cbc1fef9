"""Frame banks for the demo corpus grammar, per locale and marketing angle.

Every fact is a slot (see `copyloop.generation.slots`): {title}, {short_title}, {brand},
{category}, {price}, {list_price}, {discount_pct}, {saving}, {point1}-{point3}. No frame
contains a digit, a currency sign or a percentage, so the model trained on them never learns
to type a figure. A frame is only used for an item that can fill all of its slots (a value
hook with {discount_pct} needs a real discount). Wording avoids absolute claims and invented
numbers ("loved by thousands"); urgency frames are used only when the brief's angle asks.
Kept apart from the assembly logic in `corpus.py` so copywriters can extend the wording.
"""

from __future__ import annotations

import json
from pathlib import Path

from copyloop.generation.prompts.brief import ANGLES

# The training manifest the demo copywriter writes beside its weights (train.py): a model
# directory holding one learned its sentences from this grammar.
MANIFEST_NAME = "copywriter_train.json"


def trained_on_this_grammar(model_dir: str | Path) -> bool:
    """Whether the model in `model_dir` is the demo copywriter, whose every sentence comes from
    this grammar (so the grammar gate may hold all its frames to it); False for another LLM."""
    if not str(model_dir):
        return False
    try:
        manifest = json.loads((Path(model_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("recipe", "")).startswith(
        "copywriter-recipe"
    )


STYLES: tuple[str, ...] = ANGLES  # the corpus labels each example with its angle

HOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "value": (
            "{discount_pct} off {title}",
            "Save {discount_pct} on {title}",
            "Take {discount_pct} off the {title}",
            "Good news: {title} is {discount_pct} off",
            "{title}: was {list_price}, now {price}",
            "{title} for {price}, down from {list_price}",
            "Save {saving} on {title}",
            "Keep {saving} in your pocket: {title}",
            "Price drop: {title}, now {discount_pct} off",
            "{discount_pct} off {brand}'s {title}",
            "Your {title}, {discount_pct} off",
            "{title}, now {price}",
            "{title} for just {price}",
            "Grab {title} for {price}",
            "Now {price}: {title}",
            "{title} at {price}? Yes, really",
            "{brand} {title}, only {price}",
            "Smart money says {title} at {price}",
        ),
        "quality": (
            "{title}, made well by {brand}",
            "Built to last: {title}",
            "{brand} quality in every detail",
            "Made with care: {title}",
            "The {title}, done properly",
            "Crafted for everyday use: {title}",
            "Quality you can feel: {title}",
            "Details matter. Meet {title}",
            "{brand} takes {category} seriously",
            "Solid, simple, yours: {title}",
            "The craft behind {title}",
            "Made to be used: {title} by {brand}",
            "Thoughtfully made: {title}",
            "Quality first: {title} from {brand}",
        ),
        "social_proof": (
            "Shoppers keep coming back to {title}",
            "A shopper favourite: {title}",
            "See why people like {title}",
            "{title} is winning fans",
            "Popular in {category}: {title}",
            "Join the {brand} fans: {title}",
            "Why shoppers pick {title}",
            "{title}, a crowd pleaser",
            "Find out why {title} gets noticed",
            "Ask around about {title}",
            "{brand} fans already know {title}",
            "The {title} everyone is asking about",
        ),
        "urgency": (
            "Don't wait on {title}",
            "Last call for {title}",
            "Get {title} while the offer lasts",
            "Time to grab {title}",
            "The offer on {title} ends soon",
            "Hurry: {discount_pct} off {title}",
            "Now's the moment for {title}",
            "Quick, {title} is on offer",
        ),
        "novelty": (
            "New on your radar: {title}",
            "Meet {title}",
            "Just in: {title} by {brand}",
            "Something new in {category}: {title}",
            "Say hello to {title}",
            "Discover {title}",
            "Fresh from {brand}: {title}",
            "Have you seen {title} yet?",
            "Ever tried {title}?",
            "Here's something different: {title}",
            "Introducing {title}",
            "What's new at {brand}? {title}",
            "This just landed: {title}",
            "A new take on {category}: {title}",
        ),
        "gift": (
            "A gift they'll remember: {title}",
            "Gift idea: {title}",
            "Wrap up {title} for someone special",
            "Give {title} this season",
            "Stuck on gifts? Try {title}",
            "The easy gift: {title} by {brand}",
            "Someone you love needs {title}",
            "Make their day with {title}",
            "Treat someone to {title}",
            "Gifting made simple: {title}",
            "For the {category} fan in your life: {title}",
            "Surprise them with {title}",
        ),
        "benefit": (
            "{title}: {point1}",
            "{title}, {point1}",
            "{point1}, {point2}: {title}",
            "Make life easier with {title}",
            "{title} makes every day easier",
            "Everyday made easier: {title}",
            "Do more with {title}",
            "{title}: {point1} and {point2}",
            "Enjoy {title} every day",
            "Why {title}? {point1}",
            "{title} does the work for you",
            "{brand} {title}: {point1}",
            "Less fuss, more joy: {title}",
        ),
    },
    "zh-CN": {
        "value": (
            "{title}立减{discount_pct}",
            "{title}直降{discount_pct}",
            "{discount_pct}优惠：{title}",
            "立省{saving}，{title}到手价{price}",
            "{title}原价{list_price}，现价{price}",
            "{title}直降{discount_pct}，现价{price}",
            "省{saving}入手{title}",
            "{title}现价{price}",
            "{title}仅需{price}",
            "好价！{title}只要{price}",
            "划算！{title}到手{price}",
            "{brand} {title}特惠价{price}，省{saving}",
            "{price}就能带走{title}",
        ),
        "quality": (
            "{brand}用心之作：{title}",
            "品质之选，{title}",
            "经久耐用的{title}",
            "每个细节都用心：{title}",
            "{title}，做工扎实",
            "看得见的品质：{title}",
            "{brand}出品，{title}",
            "{title}：{point1}",
            "精工细作，{title}",
            "好{category}，选{title}",
        ),
        "social_proof": (
            "大家都在看的{title}",
            "回头客都爱的{title}",
            "人气{category}：{title}",
            "好评不断的{title}",
            "{title}，口碑之选",
            "为什么大家喜欢{title}？",
            "{brand}的粉丝都在买{title}",
            "身边人都在用的{title}",
        ),
        "urgency": (
            "别错过{title}",
            "优惠即将结束：{title}",
            "{title}，趁现在入手",
            "抓紧时间：{title}",
            "活动限时：{title}直降{discount_pct}",
            "手快有：{title}",
        ),
        "novelty": (
            "新发现：{title}",
            "认识一下{title}",
            "{brand}上新：{title}",
            "{category}新选择：{title}",
            "来试试{title}",
            "你见过{title}吗？",
            "眼前一亮的{title}",
            "不一样的{category}：{title}",
            "刚上架：{title}",
            "换个新鲜的：{title}",
        ),
        "gift": (
            "送礼好选择：{title}",
            "把{title}送给重要的人",
            "不知道送什么？试试{title}",
            "{title}，送礼有面子",
            "用{title}给TA一个惊喜",
            "心意之选：{title}",
            "送给爱{category}的TA：{title}",
        ),
        "benefit": (
            "{title}，{point1}",
            "有了{title}，生活更轻松",
            "{title}：{point1}，{point2}",
            "轻松用好{title}",
            "{title}，让每天更省心",
            "{brand} {title}：{point1}",
            "省心好用的{title}",
        ),
    },
}

# Hooks for channels too short for the full name (banners, Chinese subject lines).
SHORT_HOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "value": (
            "{discount_pct} off {short_title}",
            "{short_title}: {price}",
            "Save {discount_pct}: {short_title}",
            "{short_title}, now {price}",
            "{brand}: {discount_pct} off",
            "Save {saving} on {short_title}",
        ),
        "quality": (
            "{brand} quality",
            "Built to last: {short_title}",
            "{short_title}, well made",
            "Made with care by {brand}",
        ),
        "social_proof": (
            "Join {brand} fans",
            "{short_title}, loved",
            "{brand} fans' pick",
        ),
        "urgency": ("Last call: {short_title}", "Don't wait: {short_title}"),
        "novelty": ("New: {short_title}", "Meet {short_title}", "Just in: {short_title}"),
        "gift": ("Gift idea: {short_title}", "Gift {short_title}", "{brand} gifts"),
        "benefit": ("{short_title}, made easy", "Easy days: {short_title}", "{brand}, made easy"),
    },
    "zh-CN": {
        "value": (
            "{short_title}直降{discount_pct}",
            "{short_title}仅{price}",
            "{brand}直降{discount_pct}",
            "{short_title}省{saving}",
        ),
        "quality": ("{brand}品质", "{short_title}，好品质", "{brand}精选"),
        "social_proof": ("人气{short_title}", "{brand}口碑款"),
        "urgency": ("别错过{short_title}", "速抢{short_title}"),
        "novelty": ("新品{short_title}", "上新：{short_title}", "{brand}上新"),
        "gift": ("送礼选{short_title}", "{brand}礼物"),
        "benefit": ("好用{short_title}", "{brand}，好用"),
    },
}

# Curiosity openers from headline writing. The Upworthy archive (when present) weights them
# by how often and how well they were used; the completions name the product at the end, so a
# line the model cuts short after the name is still a sentence ("Watch what {title} can do"
# taught it "Watch what {title}!").
CURIOSITY: dict[str, tuple[str, ...]] = {
    "here's why": ("Here's why shoppers pick {title}", "Here's why {brand} fans pick {title}"),
    "this is what": ("This is what everyday made easier looks like: {title}",),
    "what happens when": ("What happens when you try {title}?",),
    "the real reason": ("The real reason shoppers like {title}",),
    "you'll want": ("You'll want to see {title}", "You'll want this one: {title}"),
    "why you should": ("Why you should meet {title}", "Why you should try {title}"),
    "meet the": ("Meet the {title}", "Meet the {title} from {brand}"),
    "ever wonder": ("Ever wonder what's different about {title}?",),
    "this is how": ("This is how to make life easier: {title}",),
    "how to": ("How to make every day easier: {title}",),
    "turns out": ("Turns out your day was missing {title}",),
    "watch": ("Watch this: {title}",),
}

BODY: dict[str, tuple[str, ...]] = {
    "en-US": (
        "{point1}, {point2} and {point3}.",
        "It comes with {point1} and {point2}.",
        "Expect {point1}, plus {point2}.",
        "{point1} and {point2}, from {brand}.",
        "{point1}. {point2}.",
        "Think {point1} and {point2}.",
        "Highlights: {point1}; {point2}.",
    ),
    "zh-CN": (
        "{point1}，{point2}，{point3}。",
        "亮点：{point1}；{point2}。",
        "{brand}出品，{point1}。",
        "{point1}，还有{point2}。",
        "卖点：{point1}。",
    ),
}

DESCRIPTION_INTRO: dict[str, tuple[str, ...]] = {
    "en-US": (
        "Meet the {title} from {brand}.",
        "The {title} by {brand} is made for everyday life.",
        "{brand} designed the {title} with you in mind.",
        "Say hello to the {title}, from the {brand} {category} range.",
    ),
    "zh-CN": (
        "{brand} {title}，为日常而生。",
        "隆重推荐{brand} {title}。",
        "这款{title}来自{brand}，用心打造。",
        "{title}，一款{category}好物。",
    ),
}

PRICE_LINE: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "discounted": (
            "Now {price}, was {list_price}.",
            "Just {price} ({discount_pct} off).",
            "Only {price}.",
            "Save {saving}.",
            "{discount_pct} off right now.",
            "Now {price}.",
        ),
        "regular": (
            "Only {price}.",
            "Yours for {price}.",
            "Just {price}.",
            "{price}.",
            "Now {price}.",
        ),
    },
    "zh-CN": {
        "discounted": (
            "到手价{price}，原价{list_price}。",
            "现价{price}，省{saving}。",
            "仅{price}。",
            "直降{discount_pct}。",
            "现价{price}，原价{list_price}。",
        ),
        "regular": ("仅需{price}。", "到手价{price}。", "只要{price}。", "现价{price}。"),
    },
}

CTA: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "friendly": ("Take a look today.", "Treat yourself.", "You'll love it.", "Come see."),
        "professional": ("Order now.", "Shop the range.", "Available now.", "See details."),
        "playful": ("Go on, add it to your cart!", "Your cart is calling!", "Why wait?"),
        "urgent": ("Shop now!", "Grab yours now!", "Act fast!", "Don't miss it!"),
        "luxury": ("Discover it now.", "Indulge yourself.", "Experience it today."),
        "informative": ("See the full details.", "Compare the options.", "Learn more."),
    },
    "zh-CN": {
        "friendly": ("快来看看吧～", "犒劳一下自己吧。", "你一定会喜欢。"),
        "professional": ("立即选购。", "欢迎下单。", "现已上架。"),
        "playful": ("冲鸭！", "购物车在召唤你！", "还等什么？"),
        "urgent": ("立即抢购！", "速抢！", "马上下单！"),
        "luxury": ("即刻探索。", "尊享臻品。", "此刻开启。"),
        "informative": ("查看详情。", "了解更多参数。", "点击了解更多。"),
    },
}

EMOJI: tuple[str, ...] = ("🎉", "✨", "🚀", "🔥", "💥", "🛒", "🎁")

# Hashtags per angle (no item text: a brand with spaces makes a broken tag).
TAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "value": ("#deals", "#savings"),
        "quality": ("#madetolast", "#quality"),
        "social_proof": ("#shopperfavourite", "#musthave"),
        "urgency": ("#lastcall", "#offer"),
        "novelty": ("#newin", "#justlanded"),
        "gift": ("#giftideas", "#giftguide"),
        "benefit": ("#everyday", "#easyliving"),
    },
    "zh-CN": {
        "value": ("#好价", "#省钱"),
        "quality": ("#品质生活", "#好物"),
        "social_proof": ("#口碑好物", "#人气"),
        "urgency": ("#限时", "#别错过"),
        "novelty": ("#上新", "#新发现"),
        "gift": ("#送礼", "#礼物"),
        "benefit": ("#生活好物", "#省心"),
    },
}

SMS_OPT_OUT: dict[str, str] = {"en-US": "Reply STOP to opt out.", "zh-CN": "回T退订"}

# Phrases the corpus asks the model to include word for word. Neutral on purpose: a model
# that learned "free shipping" or "包邮" here would volunteer offers the item does not have.
MUST_INCLUDE_CHOICES: dict[str, tuple[str, ...]] = {
    "en-US": (
        "shop online",
        "new season",
        "see the range",
        "made for you",
        "discover more",
        "for every day",
        "browse the collection",
        "your style",
    ),
    "zh-CN": (
        "线上选购",
        "新一季",
        "查看全系列",
        "为你而选",
        "发现更多",
        "生活好物",
        "品质生活",
        "欢迎选购",
    ),
}
