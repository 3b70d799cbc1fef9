"""Demo product catalog: a deterministic synthetic catalog and a loader for the Amazon sample.

The synthetic catalog gives every service realistic-looking items (titles, brands, prices,
discounts, attributes, selling points, stock) without shipping any data file, so demos and
tests run on a fresh clone. The Amazon loader turns the real 2020 sample (read-only, outside
the repository) into the same `DemoItem` shape for benchmarks on text no one here wrote.
"""

from __future__ import annotations

import csv
import gzip
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOP_CATEGORIES", "DemoItem", "generate_catalog", "load_amazon_catalog"]


@dataclass(frozen=True)
class DemoItem:
    """One catalog item as the demo services see it."""

    item_id: str
    title: str
    brand: str
    category_path: tuple[str, ...]
    price: float
    list_price: float
    currency: str
    attributes: dict[str, str] = field(default_factory=dict)
    selling_points: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    stock: int = 0

    @property
    def is_discounted(self) -> bool:
        return self.list_price > self.price

    @property
    def discount_pct(self) -> int:
        """Whole-percent discount off list price (0 when not discounted)."""
        if not self.is_discounted:
            return 0
        return round(100 * (1 - self.price / self.list_price))

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


# --------------------------------------------------------------------------------------------
# Synthetic catalog tables. Each sub-category knows its product nouns, a price band, attribute
# generators and selling-point templates that may reference those attributes.
# --------------------------------------------------------------------------------------------

Pick = Callable[[random.Random], str]


def _one_of(*values: str) -> Pick:
    return lambda rng: rng.choice(values)


def _int_range(lo: int, hi: int, step: int = 1, fmt: str = "{}") -> Pick:
    return lambda rng: fmt.format(rng.randrange(lo, hi + 1, step))


@dataclass(frozen=True)
class _SubCategory:
    name: str
    nouns: tuple[str, ...]
    price_band: tuple[float, float]
    attributes: dict[str, Pick]
    selling_points: tuple[str, ...]


@dataclass(frozen=True)
class _TopCategory:
    name: str
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]
    subcategories: tuple[_SubCategory, ...]
    tags: tuple[str, ...]


_COLORS = _one_of("black", "white", "blue", "red", "green", "grey", "pink", "navy", "beige")

_TAXONOMY: tuple[_TopCategory, ...] = (
    _TopCategory(
        name="Toys",
        brands=("Brickwell", "TinyTitan", "Playnest", "Wonderkit", "Galaxo"),
        adjectives=("Galaxy", "Jungle", "Turbo", "Rainbow", "Ocean", "Dino", "Castle"),
        tags=("gift", "kids", "educational"),
        subcategories=(
            _SubCategory(
                "Building Sets",
                ("Explorer Rocket Set", "Castle Builder Kit", "City Bricks Set"),
                (14.99, 89.99),
                {
                    "pieces": _int_range(120, 1200, 20),
                    "age_range": _one_of("6+", "8+", "10+"),
                    "material": _one_of("ABS plastic", "recycled plastic"),
                    "color": _COLORS,
                },
                (
                    "{pieces} pieces",
                    "ages {age_range}",
                    "made of {material}",
                    "compatible with major brick brands",
                    "step-by-step picture instructions",
                    "glow-in-the-dark stickers",
                ),
            ),
            _SubCategory(
                "Plush Toys",
                ("Plush Bear", "Cuddly Unicorn", "Sleepy Fox Plush"),
                (9.99, 39.99),
                {
                    "height": _int_range(20, 60, 5, "{} cm"),
                    "age_range": _one_of("0+", "3+"),
                    "material": _one_of("organic cotton", "soft polyester"),
                    "color": _COLORS,
                },
                (
                    "{height} tall",
                    "made of {material}",
                    "machine washable",
                    "safe for ages {age_range}",
                    "hypoallergenic filling",
                ),
            ),
            _SubCategory(
                "STEM Kits",
                ("Robot Coding Kit", "Crystal Growing Lab", "Solar Car Kit"),
                (19.99, 79.99),
                {
                    "age_range": _one_of("8+", "10+", "12+"),
                    "experiments": _int_range(5, 40),
                    "power": _one_of("battery", "solar", "USB"),
                },
                (
                    "{experiments} experiments",
                    "ages {age_range}",
                    "{power} powered",
                    "teaches basic coding",
                    "detailed activity booklet",
                ),
            ),
            _SubCategory(
                "Board Games",
                ("Strategy Board Game", "Family Quiz Game", "Treasure Hunt Game"),
                (12.99, 49.99),
                {
                    "players": _one_of("2-4", "2-6", "3-8"),
                    "play_time": _int_range(15, 90, 15, "{} min"),
                    "age_range": _one_of("6+", "8+", "12+"),
                },
                (
                    "for {players} players",
                    "{play_time} per game",
                    "ages {age_range}",
                    "easy to learn",
                    "great for family game night",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Electronics",
        brands=("Voltra", "Sonique", "Nimbus", "Arcway", "Lumetric"),
        adjectives=("Pro", "Mini", "Max", "Air", "Ultra", "Lite"),
        tags=("tech", "wireless", "bestseller"),
        subcategories=(
            _SubCategory(
                "Headphones",
                ("Wireless Earbuds", "Noise Cancelling Headphones", "Sport Earphones"),
                (24.99, 249.99),
                {
                    "battery_life": _int_range(6, 40, 2, "{} h"),
                    "connectivity": _one_of("Bluetooth 5.3", "Bluetooth 5.0"),
                    "color": _COLORS,
                    "water_resistance": _one_of("IPX4", "IPX5", "IPX7"),
                },
                (
                    "{battery_life} battery life",
                    "{connectivity}",
                    "{water_resistance} water resistant",
                    "active noise cancelling",
                    "fast charging case",
                    "built-in microphone",
                ),
            ),
            _SubCategory(
                "Smart Home",
                ("Smart Plug", "Video Doorbell", "Smart Speaker"),
                (19.99, 179.99),
                {
                    "connectivity": _one_of("Wi-Fi", "Wi-Fi + Zigbee"),
                    "voice_assistant": _one_of(
                        "Alexa", "Google Assistant", "Alexa and Google Assistant"
                    ),
                    "color": _COLORS,
                },
                (
                    "works with {voice_assistant}",
                    "{connectivity} connectivity",
                    "set up in minutes",
                    "energy monitoring",
                    "app control from anywhere",
                ),
            ),
            _SubCategory(
                "Chargers",
                ("Power Bank", "Fast Charger", "Wireless Charging Pad"),
                (12.99, 69.99),
                {
                    "capacity": _int_range(5000, 26800, 100, "{} mAh"),
                    "output": _one_of("20 W", "30 W", "65 W"),
                    "ports": _one_of("1", "2", "3"),
                },
                (
                    "{capacity} capacity",
                    "{output} fast charging",
                    "{ports} ports",
                    "charges a phone in 30 minutes",
                    "airline safe",
                ),
            ),
            _SubCategory(
                "Cameras",
                ("Action Camera", "Instant Camera", "Webcam"),
                (39.99, 399.99),
                {
                    "resolution": _one_of("1080p", "2.7K", "4K"),
                    "color": _COLORS,
                    "stabilization": _one_of("electronic", "optical"),
                },
                (
                    "{resolution} video",
                    "{stabilization} image stabilization",
                    "wide-angle lens",
                    "compact and light",
                    "records in low light",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Home & Kitchen",
        brands=("Hearthly", "Cookwell", "Nordhaus", "Casa Bella", "PureNest"),
        adjectives=("Classic", "Essential", "Premium", "Compact", "Everyday"),
        tags=("home", "kitchen", "gift"),
        subcategories=(
            _SubCategory(
                "Cookware",
                ("Nonstick Frying Pan", "Cast Iron Skillet", "Stainless Pot Set"),
                (19.99, 149.99),
                {
                    "material": _one_of("cast iron", "stainless steel", "ceramic nonstick"),
                    "diameter": _int_range(20, 32, 2, "{} cm"),
                    "induction_ready": _one_of("yes", "no"),
                },
                (
                    "{material} construction",
                    "{diameter} diameter",
                    "oven safe to 260 C",
                    "PFAS-free coating",
                    "dishwasher safe",
                    "even heat distribution",
                ),
            ),
            _SubCategory(
                "Small Appliances",
                ("Air Fryer", "Blender", "Electric Kettle", "Coffee Maker"),
                (29.99, 199.99),
                {
                    "power": _int_range(800, 1800, 100, "{} W"),
                    "capacity": _one_of("1.2 L", "1.7 L", "4 L", "5.5 L"),
                    "color": _COLORS,
                },
                (
                    "{power} motor",
                    "{capacity} capacity",
                    "one-touch presets",
                    "auto shut-off",
                    "easy to clean",
                    "quiet operation",
                ),
            ),
            _SubCategory(
                "Bedding",
                ("Duvet Cover Set", "Memory Foam Pillow", "Weighted Blanket"),
                (24.99, 129.99),
                {
                    "material": _one_of("100% cotton", "bamboo viscose", "linen"),
                    "size": _one_of("twin", "queen", "king"),
                    "color": _COLORS,
                },
                (
                    "{material}",
                    "{size} size",
                    "breathable and cool",
                    "OEKO-TEX certified",
                    "machine washable",
                ),
            ),
            _SubCategory(
                "Storage",
                ("Food Storage Containers", "Closet Organizer", "Spice Rack"),
                (9.99, 59.99),
                {
                    "pieces": _int_range(4, 24, 2),
                    "material": _one_of("glass", "BPA-free plastic", "bamboo"),
                },
                (
                    "set of {pieces}",
                    "made of {material}",
                    "stackable design",
                    "leak-proof lids",
                    "saves cupboard space",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Beauty",
        brands=("Lumiere", "Botaniq", "Glowlab", "Velvetine", "Aurelle"),
        adjectives=("Hydrating", "Radiant", "Gentle", "Daily", "Intense"),
        tags=("beauty", "self-care", "cruelty-free"),
        subcategories=(
            _SubCategory(
                "Skincare",
                ("Face Serum", "Moisturizer", "Sunscreen SPF 50", "Night Cream"),
                (12.99, 89.99),
                {
                    "volume": _one_of("30 ml", "50 ml", "100 ml"),
                    "skin_type": _one_of(
                        "all skin types", "dry skin", "sensitive skin", "oily skin"
                    ),
                    "key_ingredient": _one_of(
                        "hyaluronic acid", "vitamin C", "niacinamide", "ceramides"
                    ),
                },
                (
                    "with {key_ingredient}",
                    "for {skin_type}",
                    "{volume} bottle",
                    "fragrance-free",
                    "dermatologist tested",
                    "absorbs in seconds",
                ),
            ),
            _SubCategory(
                "Makeup",
                ("Matte Lipstick", "Volume Mascara", "Cushion Foundation"),
                (8.99, 49.99),
                {
                    "shade": _one_of("ruby", "nude", "coral", "ivory", "honey"),
                    "finish": _one_of("matte", "satin", "dewy"),
                },
                (
                    "{finish} finish",
                    "shade {shade}",
                    "long-wearing up to 12 hours",
                    "vegan formula",
                    "smudge-proof",
                ),
            ),
            _SubCategory(
                "Hair Care",
                ("Repair Shampoo", "Hair Mask", "Styling Oil"),
                (9.99, 39.99),
                {
                    "volume": _one_of("250 ml", "400 ml"),
                    "hair_type": _one_of("curly hair", "damaged hair", "all hair types"),
                },
                (
                    "for {hair_type}",
                    "{volume}",
                    "sulfate-free",
                    "adds shine",
                    "salon-quality results",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Sports & Outdoors",
        brands=("Trailpeak", "Stridex", "Northline", "Aquaro", "Summitry"),
        adjectives=("Trail", "Alpine", "Swift", "Endurance", "Urban"),
        tags=("outdoor", "fitness", "active"),
        subcategories=(
            _SubCategory(
                "Camping",
                ("2-Person Tent", "Sleeping Bag", "Camping Lantern"),
                (24.99, 249.99),
                {
                    "weight": _one_of("0.9 kg", "1.4 kg", "2.1 kg"),
                    "season": _one_of("3-season", "4-season"),
                    "color": _COLORS,
                },
                (
                    "{season} rated",
                    "weighs only {weight}",
                    "sets up in 5 minutes",
                    "waterproof fabric",
                    "compact carry bag",
                ),
            ),
            _SubCategory(
                "Fitness",
                ("Yoga Mat", "Adjustable Dumbbells", "Resistance Bands Set"),
                (14.99, 199.99),
                {
                    "material": _one_of("TPE", "natural rubber", "steel"),
                    "color": _COLORS,
                    "thickness": _one_of("4 mm", "6 mm", "8 mm"),
                },
                (
                    "{thickness} thick",
                    "made of {material}",
                    "non-slip grip",
                    "includes workout guide",
                    "great for home workouts",
                ),
            ),
            _SubCategory(
                "Cycling",
                ("Bike Helmet", "Bike Light Set", "Cycling Gloves"),
                (12.99, 89.99),
                {
                    "size": _one_of("S", "M", "L"),
                    "color": _COLORS,
                    "certification": _one_of("CPSC", "CE EN1078"),
                },
                (
                    "{certification} certified",
                    "size {size}",
                    "lightweight and ventilated",
                    "USB rechargeable",
                    "high visibility",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Books",
        brands=("Penwright Press", "Lantern House", "Blue Fern Books", "Atlas & Quill"),
        adjectives=("Illustrated", "Complete", "Pocket", "Deluxe", "Collector's"),
        tags=("reading", "gift", "bestseller"),
        subcategories=(
            _SubCategory(
                "Children's Books",
                ("Bedtime Stories Collection", "Dinosaur Picture Book", "First Words Board Book"),
                (6.99, 24.99),
                {
                    "pages": _int_range(24, 120, 8),
                    "format": _one_of("hardcover", "board book", "paperback"),
                    "age_range": _one_of("0-3", "3-6", "6-9"),
                },
                (
                    "{pages} pages",
                    "{format}",
                    "for ages {age_range}",
                    "award-winning illustrations",
                    "perfect for bedtime reading",
                ),
            ),
            _SubCategory(
                "Cookbooks",
                ("30-Minute Meals Cookbook", "Baking Basics", "Plant-Based Kitchen"),
                (14.99, 39.99),
                {
                    "pages": _int_range(160, 360, 20),
                    "format": _one_of("hardcover", "paperback"),
                    "recipes": _int_range(60, 150, 10),
                },
                (
                    "{recipes} recipes",
                    "{pages} pages",
                    "step-by-step photos",
                    "everyday ingredients",
                    "{format} edition",
                ),
            ),
            _SubCategory(
                "Fiction",
                ("Mystery Novel", "Fantasy Saga Box Set", "Sci-Fi Anthology"),
                (9.99, 59.99),
                {
                    "pages": _int_range(240, 980, 20),
                    "format": _one_of("hardcover", "paperback", "box set"),
                },
                (
                    "{pages} pages",
                    "{format}",
                    "international bestseller",
                    "a page-turner from start to finish",
                    "soon to be a TV series",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Fashion",
        brands=("Maison Vert", "Urbanthread", "Kinfolk & Co", "Solace", "Rivetta"),
        adjectives=("Classic", "Relaxed", "Slim", "Everyday", "Heritage"),
        tags=("fashion", "new-season", "style"),
        subcategories=(
            _SubCategory(
                "Shoes",
                ("Running Sneakers", "Leather Loafers", "Canvas Trainers"),
                (39.99, 159.99),
                {
                    "size": _int_range(36, 45),
                    "material": _one_of("leather", "knit mesh", "canvas"),
                    "color": _COLORS,
                },
                (
                    "{material} upper",
                    "cushioned insole",
                    "all-day comfort",
                    "size {size} in stock",
                    "slip-resistant sole",
                ),
            ),
            _SubCategory(
                "Outerwear",
                ("Puffer Jacket", "Trench Coat", "Rain Shell"),
                (49.99, 249.99),
                {
                    "size": _one_of("XS", "S", "M", "L", "XL"),
                    "material": _one_of("recycled nylon", "wool blend", "cotton twill"),
                    "color": _COLORS,
                },
                (
                    "{material}",
                    "water-repellent finish",
                    "warm yet light",
                    "packable hood",
                    "relaxed fit",
                ),
            ),
            _SubCategory(
                "Accessories",
                ("Leather Wallet", "Silk Scarf", "Canvas Tote Bag"),
                (14.99, 89.99),
                {
                    "material": _one_of("full-grain leather", "silk", "organic canvas"),
                    "color": _COLORS,
                },
                (
                    "{material}",
                    "handcrafted",
                    "gift box included",
                    "timeless design",
                    "RFID blocking",
                ),
            ),
        ),
    ),
    _TopCategory(
        name="Grocery",
        brands=("Harvest Lane", "Green Orchard", "Daily Grain", "Alpenmilk", "Spice Route"),
        adjectives=("Organic", "Artisan", "Classic", "Family Size", "Single-Origin"),
        tags=("food", "pantry", "organic"),
        subcategories=(
            _SubCategory(
                "Coffee & Tea",
                ("Ground Coffee", "Whole Bean Coffee", "Green Tea Bags"),
                (5.99, 29.99),
                {
                    "weight": _one_of("250 g", "500 g", "1 kg"),
                    "origin": _one_of("Colombia", "Ethiopia", "Yunnan", "Brazil"),
                    "roast": _one_of("light", "medium", "dark"),
                },
                (
                    "from {origin}",
                    "{roast} roast",
                    "{weight} pack",
                    "fair trade certified",
                    "freshly roasted",
                ),
            ),
            _SubCategory(
                "Snacks",
                ("Mixed Nuts", "Dark Chocolate Bar", "Granola Bites"),
                (2.99, 19.99),
                {
                    "weight": _one_of("100 g", "200 g", "500 g"),
                    "diet": _one_of("vegan", "gluten-free", "no added sugar"),
                },
                ("{diet}", "{weight}", "high in protein", "resealable bag", "great for on the go"),
            ),
            _SubCategory(
                "Pantry",
                ("Extra Virgin Olive Oil", "Basmati Rice", "Pasta Sauce"),
                (3.99, 24.99),
                {
                    "volume": _one_of("500 ml", "750 ml", "1 kg", "2 kg"),
                    "origin": _one_of("Italy", "India", "Spain", "Greece"),
                },
                (
                    "from {origin}",
                    "{volume}",
                    "no preservatives",
                    "cold pressed",
                    "chef's favourite",
                ),
            ),
        ),
    ),
)

TOP_CATEGORIES: tuple[str, ...] = tuple(top.name for top in _TAXONOMY)

_EXTRA_TAGS = ("new", "bestseller", "limited-edition", "eco-friendly", "top-rated", "exclusive")


def _charm_price(rng: random.Random, lo: float, hi: float) -> float:
    """A price in [lo, hi] ending in .99 or .49, as shops actually price things."""
    whole = rng.randint(int(lo), max(int(lo), int(hi)))
    return round(whole + rng.choice((0.99, 0.99, 0.49)), 2)


def _make_item(index: int, top: _TopCategory, rng: random.Random) -> DemoItem:
    sub = rng.choice(top.subcategories)
    brand = rng.choice(top.brands)
    noun = rng.choice(sub.nouns)
    adjective = rng.choice(top.adjectives)
    attributes = {key: pick(rng) for key, pick in sub.attributes.items()}
    title = f"{adjective} {noun}"
    if "color" in attributes and rng.random() < 0.4:
        title = f"{title}, {attributes['color'].title()}"

    points_pool = [template.format(**attributes) for template in sub.selling_points]
    selling_points = tuple(rng.sample(points_pool, k=min(3, len(points_pool))))

    price = _charm_price(rng, *sub.price_band)
    list_price = price
    if rng.random() < 0.35:
        discount = rng.choice((0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5))
        list_price = round(int(price / (1 - discount)) + 0.99, 2)

    stock = 0 if rng.random() < 0.1 else rng.choice((rng.randint(1, 9), rng.randint(10, 500)))
    tags = tuple(sorted({rng.choice(top.tags), *rng.sample(_EXTRA_TAGS, k=rng.randint(0, 2))}))
    return DemoItem(
        item_id=f"demo-{index:05d}",
        title=title,
        brand=brand,
        category_path=(top.name, sub.name),
        price=price,
        list_price=list_price,
        currency="USD",
        attributes=attributes,
        selling_points=selling_points,
        tags=tags,
        stock=stock,
    )


def generate_catalog(n_items: int = 240, seed: int = 7) -> list[DemoItem]:
    """A deterministic synthetic catalog spread evenly over the top categories.

    The same (n_items, seed) always yields the same items, so demo data, training corpora
    and tests agree across machines.
    """
    if n_items < 0:
        raise ValueError("n_items must be >= 0")
    rng = random.Random(seed)
    return [_make_item(i, _TAXONOMY[i % len(_TAXONOMY)], rng) for i in range(n_items)]


# --------------------------------------------------------------------------------------------
# Amazon 2020 sample loader
# --------------------------------------------------------------------------------------------

_AMOUNT = re.compile(r"\$\s*(\d[\d,]*)(?:\s*\.\s*(\d{1,2})|\s+(\d{2})\b)?")
_BOILERPLATE_POINTS = ("make sure this fits",)
_SPEC_KEYS = {
    "item weight": "item_weight",
    "product dimensions": "dimensions",
    "manufacturer recommended age": "recommended_age",
    "item model number": "model_number",
}
_MAX_POINT_CHARS = 160
_DEFAULT_STOCK = 100  # the sample has no stock column values; listed items are assumed in stock


def _parse_amounts(text: str) -> list[float]:
    amounts = []
    for whole, cents_dot, cents_space in _AMOUNT.findall(text):
        cents = cents_dot or cents_space or "0"
        amounts.append(float(f"{whole.replace(',', '')}.{cents.ljust(2, '0')}"))
    return amounts


def _parse_prices(selling_price: str) -> tuple[float, float] | None:
    """(price, list_price) from the sample's messy 'Selling Price' strings, or None.

    Handles "$18.66", ranges "$22.50 - $49.88" (the lower bound), scraped duplicates
    "$6.94 $ 6 . 94", and strike-through blocks "$ 19 99 $39.95 ... Save $19.96 (50%)".
    """
    amounts = _parse_amounts(selling_price)
    if not amounts or amounts[0] <= 0:
        return None
    price = amounts[0]
    list_price = price
    if "save" in selling_price.lower() and len(amounts) >= 2 and amounts[1] > price:
        list_price = amounts[1]
    return price, list_price


def _parse_spec_attributes(spec: str, model_number: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in spec.split("|"):
        key, sep, value = part.partition(":")
        if not sep:
            continue
        normalized = re.sub(r"\s+", " ", key).strip().lower()
        squashed = normalized.replace(" ", "")
        for label, attr_name in _SPEC_KEYS.items():
            if normalized == label or squashed == label.replace(" ", ""):
                cleaned = re.sub(r"\s+", " ", value).strip(" ;")
                if cleaned:
                    attributes[attr_name] = cleaned[:80]
    if model_number and "model_number" not in attributes:
        attributes["model_number"] = model_number[:80]
    return attributes


def _clean_points(about: str) -> tuple[str, ...]:
    points = []
    for raw in about.split(" | "):
        point = re.sub(r"\s+", " ", raw).strip()
        if not point or point.lower().startswith(_BOILERPLATE_POINTS):
            continue
        if len(point) > _MAX_POINT_CHARS:
            point = point[:_MAX_POINT_CHARS].rsplit(" ", 1)[0] + "..."
        points.append(point)
    return tuple(points[:5])


def _guess_brand(title: str) -> str:
    """The sample's Brand Name column is empty; listings usually start with the brand."""
    first = title.split()[0] if title.split() else ""
    first = first.strip(",:;-–()[]")
    return first if first and first[0].isalpha() else ""


def load_amazon_catalog(path: str | Path) -> list[DemoItem]:
    """Load the Amazon 2020 sample (csv.gz) as DemoItems.

    Rows without a name or a parseable price are skipped; a missing category becomes
    ("Uncategorized",); stock is unknown in the sample and defaults to in stock.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    items: list[DemoItem] = []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            title = re.sub(r"\s+", " ", row.get("Product Name") or "").strip()
            prices = _parse_prices(row.get("Selling Price") or "")
            if not title or prices is None:
                continue
            category = tuple(
                level.strip() for level in (row.get("Category") or "").split(" | ") if level.strip()
            ) or ("Uncategorized",)
            items.append(
                DemoItem(
                    item_id=(row.get("Uniq Id") or "").strip() or f"amazon-{len(items):05d}",
                    title=title,
                    brand=(row.get("Brand Name") or "").strip() or _guess_brand(title),
                    category_path=category,
                    price=prices[0],
                    list_price=prices[1],
                    currency="USD",
                    attributes=_parse_spec_attributes(
                        row.get("Product Specification") or "",
                        (row.get("Model Number") or "").strip(),
                    ),
                    selling_points=_clean_points(row.get("About Product") or ""),
                    tags=(category[-1],) if category != ("Uncategorized",) else (),
                    stock=_DEFAULT_STOCK,
                )
            )
    return items
