"""Does the copy read as sentences? A small model sampling a frame grammar can splice two
sentences mid-way ("Watch what {title}!", "Learn more with {price}.", "Grab yours details."):
every word is a word and every fact is true, yet no marketer would publish the line.

Two checks, deterministic and well under a millisecond per variant once loaded (`warm_up`
builds the grammar at start-up, about 10 ms):

- The frame grammar's n-gram model (`FrameGrammar`), for slot frames in the demo copywriter's
  vocabulary. The copywriter learned every sentence it knows from the frame grammar in
  `copywriter/phrases.py` (hooks, bodies, price lines, calls to action, as the corpus
  assembles them), so its own text can only recombine those. A sentence is accepted when every
  run of `ORDER` tokens in it (lower-cased words, Chinese characters, slots as one token, the
  sentence's start and end marks) occurs in some grammar sentence; a short sentence that opens
  with a fact must be one the grammar writes whole ("{title}, now {price}." yes, "{brand}
  fans." no). The splices above each contain a run the grammar never has ("what {title} <end>",
  "more with {price}"), while two grammar sentences joined where they share words still pass.
  Chinese clauses chained by commas are units of their own (流水句), so they recombine as
  English sentences do. A frame with a word the grammar never uses (outside the item's facts
  and the shop's must-include terms) was written by someone else (a production LLM asked for
  slots, a person) and is left to the shape rules. The grammar is the one the served model
  was trained on only while phrases.py is unchanged: retrain the copywriter when it changes.
- Sentence-shape rules (`shape_problems`), for every text, plain or slotted, English or
  Chinese: a sentence does not end on an article, possessive or conjunction ("the", "your",
  "and"; a Chinese clause not on 和, 把, 给 ...), a possessive pronoun does not stand before a
  noun ("yours details"), no function word is doubled ("the the", 的的), no letter stands alone
  ("W new in ...") and punctuation does not stand alone (", ." "，。"). These are what a
  production LLM's plain copy can get wrong too, so they are all that applies to plain text:
  no grammar of ours describes a production model's language, and its fluency is its own (the
  mean log-probability in quality.py ranks it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from copyloop.generation.prompts.brief import CopyBrief
from copyloop.generation.slots import SLOT_RE, slot_values

__all__ = [
    "EN_DANGLING",
    "EN_POSSESSIVE_PRONOUNS",
    "ORDER",
    "FrameGrammar",
    "frame_grammar",
    "frame_of_copy",
    "grammar_problems",
    "item_facts",
    "shape_problems",
    "warm_up",
]

ORDER = 3  # tokens per run; 3 = a word and its two neighbours, start and end marks included
START, END = "<s>", "</s>"
QUESTION = "?"

# Slots that are the same kind of thing in a sentence: the corpus swaps the short name for the
# full one, and the selling points are interchangeable noun phrases.
_SLOT_CLASS = {
    "short_title": "title",
    "point1": "point",
    "point2": "point",
    "point3": "point",
}
_EN_TOKEN = re.compile(
    r"\{[a-z][a-z0-9_]*(?::[^{}\s]{1,40})?\}|[a-z0-9]+(?:['’][a-z]+)*|[^\sa-z0-9]", re.IGNORECASE
)
_ZH_TOKEN = re.compile(
    r"\{[a-z][a-z0-9_]*(?::[^{}\s]{1,40})?\}|[a-z0-9]+(?:['’][a-z]+)*|\S", re.IGNORECASE
)
_EN_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?])$")
# Chinese copy chains clauses with commas (流水句), each a unit of its own, and the SMS brand
# tag 【…】 stands apart: both end a unit, so clauses recombine where English sentences would.
_ZH_SENTENCE_END = re.compile(r"(?<=[。！？!?～~，,】])")
_HASHTAG = re.compile(r"#[^\s#]+")
SHOP = "{shop}"  # where the shop's own words were: the grammar cannot judge what is next to them
_DROP_PUNCT = frozenset(".!。！～~…·\"“”'‘’「」『』")


def _is_symbol(ch: str) -> bool:
    """Emoji and other pictographs: decoration, not words."""
    return unicodedata.category(ch) in ("So", "Sk", "Cs") or 0xFE00 <= ord(ch) <= 0xFE0F


def _slot_token(token: str) -> str:
    name = token[1:-1].split(":", 1)[0]
    return "{" + _SLOT_CLASS.get(name, name) + "}"


def _sentences(text: str, locale: str) -> list[str]:
    """The text cut into sentences."""
    splitter = _ZH_SENTENCE_END if locale == "zh-CN" else _EN_SENTENCE_END
    return [s.strip() for s in splitter.split(text) if s.strip()]


def _tokens(sentence: str, locale: str) -> list[str]:
    """Lower-cased words (Chinese: characters), slots as one token each, punctuation kept
    except the closing mark; a question keeps its question mark (it changes the sentence)."""
    pattern = _ZH_TOKEN if locale == "zh-CN" else _EN_TOKEN
    tokens: list[str] = []
    for raw in pattern.findall(sentence):
        if raw.startswith("{") and raw.endswith("}"):
            tokens.append(_slot_token(raw))
        elif len(raw) == 1 and (_is_symbol(raw) or raw in _DROP_PUNCT):
            continue
        elif raw in "?？":
            tokens.append(QUESTION)
        else:
            tokens.append(unicodedata.normalize("NFKC", raw).lower().replace("’", "'"))
    while tokens and tokens[-1] in (",", "，", ":", "：", ";", "；") and len(tokens) > 1:
        tokens.pop()  # a trailing comma is the shape rules' business, not the grammar's
    return tokens


def _runs(tokens: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """The runs of ORDER tokens of a sentence with its start and end marks."""
    padded = (START, *tokens, END)
    for i in range(max(1, len(padded) - ORDER + 1)):
        yield padded[i : i + ORDER]


def _windows(tokens: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """What a sentence is judged by: its runs; but a short sentence (at most ORDER tokens) that
    opens with a fact rather than the copywriter's own word is judged whole. Runs are too short
    to tell "{brand} fans." (two runs the grammar has) from a fragment it writes ("{title}, now
    {price}."); a short sentence opening with a word ("Grab {title}!") is an imperative or a
    question whose runs say enough."""
    if len(tokens) <= ORDER and not _is_word(tokens[0]):
        yield (START, *tokens, END)
    else:
        yield from _runs(tokens)


def _is_word(token: str) -> bool:
    return token[:1].isalnum() and not token.startswith("{")


@dataclass(frozen=True)
class FrameGrammar:
    """The runs of `ORDER` tokens (and whole short sentences) the frame grammar contains,
    and its vocabulary, per locale."""

    runs: dict[str, frozenset[tuple[str, ...]]]
    vocabulary: dict[str, frozenset[str]]

    @classmethod
    def from_sentences(cls, sentences: dict[str, Iterable[str]]) -> FrameGrammar:
        runs: dict[str, frozenset[tuple[str, ...]]] = {}
        vocabulary: dict[str, frozenset[str]] = {}
        for locale, texts in sentences.items():
            seen: set[tuple[str, ...]] = set()
            words: set[str] = set()
            for text in texts:
                for sentence in _sentences(_HASHTAG.sub(" ", text), locale):
                    tokens = _tokens(sentence, locale)
                    if not tokens:
                        continue
                    seen.update(_runs(tokens))
                    seen.add((START, *tokens, END))
                    words.update(t for t in tokens if _is_word(t))
            runs[locale], vocabulary[locale] = frozenset(seen), frozenset(words)
        return cls(runs, vocabulary)

    def speaks(self, frame: str, locale: str) -> bool:
        """Whether every word of `frame` is one the grammar uses (the frame is in its
        language, so the grammar can judge it)."""
        known = self.vocabulary.get(locale)
        if not known:
            return False
        for sentence in _sentences(_HASHTAG.sub(" ", frame), locale):
            if any(_is_word(t) and t not in known for t in _tokens(sentence, locale)):
                return False
        return True

    def unseen(self, frame: str, locale: str) -> list[str]:
        """The runs of `frame` the grammar never has, one per sentence, as text."""
        known = self.runs.get(locale, frozenset())
        found: list[str] = []
        for sentence in _sentences(_HASHTAG.sub(" ", frame), locale):
            tokens = _tokens(sentence, locale)
            if not tokens:
                continue
            for window in _windows(tokens):
                if window not in known and SHOP not in window:
                    joiner = "" if locale == "zh-CN" else " "
                    found.append(joiner.join(window).replace(START, "^").replace(END, "$"))
                    break
        return found


def _grammar_sentences() -> dict[str, list[str]]:
    """Every sentence the demo corpus can write, as `copywriter.corpus` assembles them: each
    bank entry closed as a sentence, hooks also behind the SMS brand prefix, must-include
    choices as their own sentences."""
    from copyloop.generation.copywriter import phrases

    out: dict[str, list[str]] = {}
    for locale in ("en-US", "zh-CN"):
        close = "。" if locale == "zh-CN" else "."
        hooks = ["{title}"]  # the last resort when no hook fits the limit
        hooks += [h for bank in phrases.HOOKS[locale].values() for h in bank]
        hooks += [h for bank in phrases.SHORT_HOOKS[locale].values() for h in bank]
        if locale == "en-US":
            hooks += [h for bank in phrases.CURIOSITY.values() for h in bank]
        prefixed = [("{brand}: " if locale == "en-US" else "【{brand}】") + h for h in hooks]
        texts = [h if h[-1:] in "?!.？！。" else h + close for h in hooks + prefixed]
        texts += list(phrases.BODY[locale]) + list(phrases.DESCRIPTION_INTRO[locale])
        texts += [line for lines in phrases.PRICE_LINE[locale].values() for line in lines]
        texts += [line for lines in phrases.CTA[locale].values() for line in lines]
        texts.append(phrases.SMS_OPT_OUT[locale])
        texts += [m + close for m in phrases.MUST_INCLUDE_CHOICES[locale]]
        out[locale] = texts
    return out


@cache
def frame_grammar() -> FrameGrammar:
    """The demo copywriter's grammar, built once (a few milliseconds) from the phrase banks."""
    return FrameGrammar.from_sentences(dict(_grammar_sentences()))


# ---- delexicalising: the item's facts and the shop's terms are not the copywriter's words ----


def item_facts(brief: CopyBrief) -> tuple[tuple[str, str], ...]:
    """(slot, value) for every fact of the item as slots fill it and as the brief states it:
    the copy may type them out instead of using the slot."""
    facts = [("{" + name + "}", value) for name, value in slot_values(brief).items() if value]
    facts += [("{title}", brief.item_title), ("{brand}", brief.brand)]
    facts += [("{point}", point) for point in brief.selling_points]
    return tuple((slot, value) for slot, value in facts if value.strip())


def frame_of_copy(text: str, brief: CopyBrief) -> str:
    """Filled copy back as the frame it was: the item's facts replaced by their slots (for
    judging published model copy, e.g. the copy-quality bench's live pool)."""
    return _delexicalise(text, brief.locale, item_facts(brief), (), frame_grammar())


def _delexicalise(
    frame: str,
    locale: str,
    facts: Sequence[tuple[str, str]],
    shop_terms: Sequence[str],
    grammar: FrameGrammar,
) -> str:
    """`frame` with facts typed out in full replaced by their slot (whole words, and not a
    fact made only of the grammar's own words: a point "fast" is not the "fast" of "Act
    fast!"), and the shop's required terms cut out (its words, said where it wants them)."""
    folded = _HASHTAG.sub(" ", frame)
    known = grammar.vocabulary.get(locale, frozenset())
    for slot, value in sorted(facts, key=lambda f: -len(f[1])):
        value = value.strip()
        if len(value) < 2 or value.casefold() not in folded.casefold():
            continue
        if all(t in known for t in _tokens(value, locale) if _is_word(t)):
            continue
        edge = r"(?<![A-Za-z0-9])" if value[:1].isalnum() else ""
        tail = r"(?![A-Za-z0-9])" if value[-1:].isalnum() else ""
        pattern = edge + re.escape(value) + tail
        folded = re.sub(pattern, slot.replace("\\", "\\\\"), folded, flags=re.IGNORECASE)
    for term in sorted((t.strip() for t in shop_terms), key=len, reverse=True):
        if len(term) >= 2:
            # With the separator before it: the shop chose to append it there.
            pattern = r"[,，:：;；·、]?\s*" + re.escape(term)
            folded = re.sub(pattern, " " + SHOP, folded, flags=re.IGNORECASE)
    return folded


# ---- sentence-shape rules ----------------------------------------------------------------

# Words after which an English sentence cannot stop: articles, possessive determiners and
# conjunctions. (Prepositions, auxiliaries and wh-words can: "the one everyone is asking
# about", "Yes, it is.", "Here's why."; the frame grammar judges those in slot frames.)
EN_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "your",
        "my",
        "our",
        "their",
        "its",
        "every",
        "and",
        "or",
        "but",
        "nor",
        "because",
        "than",
    ]
)
EN_POSSESSIVE_PRONOUNS = frozenset(["yours", "mine", "ours", "theirs", "hers"])
# What may follow "yours" / "mine" directly: a preposition, conjunction, adverb or verb, never
# the noun a determiner would take ("Grab yours details").
_EN_AFTER_POSSESSIVE = frozenset(
    [
        "for",
        "to",
        "with",
        "and",
        "or",
        "but",
        "now",
        "today",
        "tonight",
        "too",
        "truly",
        "forever",
        "here",
        "there",
        "in",
        "at",
        "on",
        "from",
        "is",
        "are",
        "was",
        "will",
        "already",
        "first",
        "before",
        "soon",
        "again",
        "this",
        "while",
    ]
)
_EN_NO_DOUBLE = EN_DANGLING | frozenset(
    ["to", "of", "for", "with", "in", "on", "at", "is", "are", "now", "just", "only"]
)
_EN_WORD = re.compile(
    r"[A-Za-z]+(?:['’][A-Za-z]+)*|\{[a-z0-9_:]+\}(?:['’]s)?|[0-9][0-9.,%]*[A-Za-z]*|[^\sA-Za-z0-9]"
)
_EN_BAD_PUNCT = re.compile(
    r"[,;:]\s*[,;:.!?]|\.\s*[,;:]|(?<!\.)\.\.(?!\.)|\s[,;:.!?](?!\.)|^\s*[,;:.]"
)

# Characters after which a Chinese clause cannot stop (prepositions, conjunctions, the
# disposal and passive markers) and which cannot open one (particles that follow a word).
_ZH_DANGLING_END = frozenset("和与及或把被给对向从跟比将让使为在")
_ZH_BAD_START = frozenset("的吗呢吧")
_ZH_NO_DOUBLE = frozenset("的了和与把被在是就也都很")
_ZH_CLAUSE = re.compile(r"[，,。！？!?；;：:～~、\n]")
_ZH_BAD_PUNCT = re.compile(r"[，,、；;：:][，,。！？!?；;：:、]|[。！？!?][，,、；;：:]|。。")


def _en_shape(text: str) -> list[str]:
    problems: list[str] = []
    own = _HASHTAG.sub(" ", text)
    if _EN_BAD_PUNCT.search(own):
        problems.append("stray punctuation")
    for sentence in _sentences(own, "en-US"):
        words = [w.lower().replace("’", "'") for w in _EN_WORD.findall(sentence)]
        words = [w for w in words if not _is_symbol(w[0]) and w not in _DROP_PUNCT]
        if not words:
            continue
        stray = [w for w in words if len(w) == 1 and w.isalpha() and w not in ("a", "i")]
        if stray:  # a sub-word piece on its own ("W new in ..."); facts are slots by now
            problems.append(f"stray letter {stray[0]!r}: {sentence!r}")
        last = words[-1] if words[-1] != "?" else words[-2] if len(words) > 1 else ""
        if last in EN_DANGLING:
            problems.append(f"ends on {last!r}: {sentence!r}")
        for first, second in pairwise(words):
            noun_like = second[:1].isalpha() or second.startswith("{")
            if first in EN_POSSESSIVE_PRONOUNS and noun_like and second not in _EN_AFTER_POSSESSIVE:
                problems.append(f"{first!r} before a noun: {sentence!r}")
            if first == second and first in _EN_NO_DOUBLE:
                problems.append(f"{first!r} twice: {sentence!r}")
    return problems


def _zh_shape(text: str) -> list[str]:
    problems: list[str] = []
    own = SLOT_RE.sub("名", _HASHTAG.sub(" ", text))  # a slot reads as a noun
    if _ZH_BAD_PUNCT.search(own):
        problems.append("stray punctuation")
    for clause in _ZH_CLAUSE.split(own):
        clause = "".join(ch for ch in clause.strip() if not _is_symbol(ch)).strip()
        if not clause:
            continue
        if clause[-1] in _ZH_DANGLING_END:
            problems.append(f"ends on {clause[-1]!r}: {clause!r}")
        if clause[0] in _ZH_BAD_START:
            problems.append(f"starts with {clause[0]!r}: {clause!r}")
        for a, b in pairwise(clause):
            if a == b and a in _ZH_NO_DOUBLE:
                problems.append(f"{a!r} twice: {clause!r}")
    return problems


def shape_problems(text: str, locale: str) -> list[str]:
    """What makes `text` (a frame, or copy with the item's facts taken out: see
    `frame_of_copy`) not read as sentences in any writer's hands."""
    return _zh_shape(text) if locale == "zh-CN" else _en_shape(text)


def grammar_problems(
    frame: str,
    locale: str,
    facts: Sequence[tuple[str, str]] = (),
    shop_terms: Sequence[str] = (),
    grammar: FrameGrammar | None = None,
    strict: bool = False,
) -> list[str]:
    """Why `frame` does not read as sentences; [] when it does.

    `facts` are (slot, value) pairs of the item ("{title}", "Trail Bike Helmet"): typed out in
    full they count as the slot. `shop_terms` are the shop's must-include terms and disclaimer.
    A slot frame in the grammar's vocabulary is held to the grammar; everything is held to the
    shape rules. `strict`: the frame comes from a copywriter trained on this grammar, so every
    slot frame is held to it, a word it never uses included ("Here happens when you!")."""
    grammar = grammar or frame_grammar()
    own = _delexicalise(frame, locale, facts, shop_terms, grammar)
    problems = shape_problems(own, locale)
    if problems:
        return problems
    # Written to the slot contract (not plain text) and in the grammar's words.
    if SLOT_RE.search(frame) and (strict or grammar.speaks(own, locale)):
        unseen = grammar.unseen(own, locale)
        problems += [f"not a sentence the copywriter knows: {u!r}" for u in unseen]
    return problems


def warm_up() -> None:
    """Builds the frame grammar at start-up, off the first request."""
    frame_grammar()
