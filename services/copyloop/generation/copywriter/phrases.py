"""Phrase banks for the demo corpus grammar, per locale.

Kept apart from the assembly logic in `corpus.py` so copywriters can extend the wording
without touching the grammar. Slots: {name} (short product name), {full_name}, {brand},
{leaf} (category leaf, localised), {point}/{point2}/{point3} (selling points), {price},
{was} (list price), {pct} (percent off), {zhe} (Chinese discount notation: 20% off = 8折),
{save} (amount saved).
"""

from __future__ import annotations

STYLES: tuple[str, ...] = (
    "discount",
    "urgency",
    "quality",
    "social_proof",
    "question",
    "benefit",
)

HOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "discount": (
            "{pct}% off {name}",
            "Save {pct}% on {name}",
            "{name}, now just {price}",
            "{name}: was {was}, now {price}",
            "Take {pct}% off the {name}",
            "Price drop: {name} for {price}",
        ),
        "urgency": (
            "Last chance for {name}",
            "Hurry, {name} is almost gone",
            "Ends tonight: {name}",
            "Don't miss out on {name}",
            "Going fast: {name}",
            "Today only: {name}",
        ),
        "quality": (
            "{name}, crafted by {brand}",
            "Built to last: {name}",
            "{brand} quality in every detail",
            "The {name} that gets it right",
            "Made well, made to last: {name}",
        ),
        "social_proof": (
            "Loved by thousands: {name}",
            "A shopper favourite: {name}",
            "Why everyone wants the {name}",
            "Shoppers love the {name}",
            "The {leaf} shoppers keep coming back for",
        ),
        "question": (
            "Looking for the perfect {leaf}?",
            "Ready to meet the {name}?",
            "Need a new {leaf}?",
            "Have you seen the {name}?",
            "Want {point}?",
        ),
        "benefit": (
            "{Point} with the {name}",
            "{name}: {point}",
            "Get {point} with {brand}",
            "Enjoy {point} every day",
            "{name} brings you {point}",
        ),
    },
    "zh-CN": {
        "discount": (
            "{name}限时{zhe}折",
            "{name}直降{pct}%",
            "立省{save}，{name}到手价{price}",
            "{name}原价{was}，现价{price}",
            "{brand} {name}今日特惠{price}",
        ),
        "urgency": (
            "机会难得！{name}即将售罄",
            "手慢无！{name}库存告急",
            "今晚截止：{name}",
            "错过不再：{name}",
            "仅限今天：{name}",
        ),
        "quality": (
            "{brand}匠心之作：{name}",
            "品质之选，{name}",
            "经久耐用的{name}",
            "每个细节都用心：{brand} {name}",
        ),
        "social_proof": (
            "万人好评的{name}",
            "爆款{leaf}：{name}",
            "大家都在买的{name}",
            "回购率超高的{leaf}，{name}",
        ),
        "question": (
            "还在找合适的{leaf}吗？",
            "想要一款好用的{leaf}吗？",
            "你见过{name}吗？",
            "{leaf}怎么选？试试{name}",
        ),
        "benefit": (
            "{name}，{point}",
            "{point}，就选{brand} {name}",
            "有了{name}，生活更轻松",
            "{brand} {name}：{point}",
        ),
    },
}

# Hooks without the product name, for channels too short to carry it (banners, Chinese
# subject lines).
SHORT_HOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "discount": ("{pct}% off today", "Save {pct}% now", "{pct}% off {leaf}"),
        "urgency": ("Last chance!", "Ends tonight", "Almost gone"),
        "quality": ("Built to last", "{brand} quality"),
        "social_proof": ("Shopper favourite", "Loved by thousands"),
        "question": ("New {leaf}?", "Ready?"),
        "benefit": ("Made for you", "{brand}, made easy"),
    },
    "zh-CN": {
        "discount": ("限时{zhe}折", "直降{pct}%"),
        "urgency": ("机会难得！", "手慢无！"),
        "quality": ("品质之选", "{brand}精选"),
        "social_proof": ("万人好评", "爆款{leaf}"),
        "question": ("想要新{leaf}吗？", "{leaf}怎么选？"),
        "benefit": ("好用{leaf}", "生活好帮手"),
    },
}

BODY: dict[str, tuple[str, ...]] = {
    "en-US": (
        "{Point}, {point2} and {point3}.",
        "It comes with {point} and {point2}.",
        "Expect {point}, plus {point2}.",
        "{Point} and {point2}, from {brand}.",
    ),
    "zh-CN": (
        "{point}，{point2}，{point3}。",
        "亮点：{point}；{point2}。",
        "{brand}出品，{point}。",
    ),
}

DESCRIPTION_INTRO: dict[str, tuple[str, ...]] = {
    "en-US": (
        "Meet the {full_name} from {brand}.",
        "The {full_name} by {brand} is made for everyday life.",
        "{brand} designed the {full_name} with you in mind.",
    ),
    "zh-CN": (
        "{brand} {full_name}，为日常而生。",
        "隆重推荐{brand} {full_name}。",
        "这款{full_name}来自{brand}，用心打造。",
    ),
}

PRICE_LINE: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "discounted": (
            "Now {price}, was {was}.",
            "Just {price} (save {pct}%).",
            "Only {price} today.",
        ),
        "regular": ("Only {price}.", "Yours for {price}.", "Just {price}."),
    },
    "zh-CN": {
        "discounted": ("到手价{price}，原价{was}。", "现价{price}，省{save}。", "今日仅{price}。"),
        "regular": ("仅需{price}。", "到手价{price}。", "只要{price}。"),
    },
}

CTA: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "friendly": ("Take a look today.", "Treat yourself.", "You'll love it."),
        "professional": ("Order now.", "Shop the range.", "Available now."),
        "playful": ("Go on, add it to your cart!", "Your cart is calling!", "Why wait?"),
        "urgent": ("Shop now before it's gone!", "Grab yours now!", "Act fast!"),
        "luxury": ("Discover it now.", "Indulge yourself.", "Experience it today."),
        "informative": ("See the full details.", "Compare sizes and options.", "Learn more."),
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

SMS_OPT_OUT: dict[str, str] = {"en-US": "Reply STOP to opt out.", "zh-CN": "回T退订"}

MUST_INCLUDE_CHOICES: dict[str, tuple[str, ...]] = {
    "en-US": ("free shipping", "limited stock", "new arrival", "members only", "gift wrap"),
    "zh-CN": ("包邮", "限量", "新品", "会员专享", "赠品"),
}

# Localised category leaves; unknown leaves fall back to a generic word.
ZH_CATEGORY: dict[str, str] = {
    "Building Sets": "积木",
    "Plush Toys": "毛绒玩具",
    "STEM Kits": "科学玩具",
    "Board Games": "桌游",
    "Headphones": "耳机",
    "Smart Home": "智能家居",
    "Chargers": "充电器",
    "Cameras": "相机",
    "Cookware": "锅具",
    "Small Appliances": "小家电",
    "Bedding": "床品",
    "Storage": "收纳",
    "Skincare": "护肤品",
    "Makeup": "彩妆",
    "Hair Care": "护发",
    "Camping": "露营装备",
    "Fitness": "健身器材",
    "Cycling": "骑行装备",
    "Children's Books": "童书",
    "Cookbooks": "菜谱",
    "Fiction": "小说",
    "Shoes": "鞋",
    "Outerwear": "外套",
    "Accessories": "配饰",
    "Coffee & Tea": "咖啡茶饮",
    "Snacks": "零食",
    "Pantry": "粮油调味",
    "Toys": "玩具",
    "Electronics": "数码",
    "Home & Kitchen": "家居厨房",
    "Beauty": "美妆",
    "Sports & Outdoors": "运动户外",
    "Books": "图书",
    "Fashion": "服饰",
    "Grocery": "食品",
}
ZH_GENERIC_CATEGORY = "好物"
