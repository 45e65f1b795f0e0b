"""Assertion status of an entity: present, absent, possible, historical, hypothetical or family.

A dependency-free ConText/NegEx-style implementation (Harkema et al. 2009; Chapman et al. 2001): cue phrases
(`assertion_cues.tsv`) open a scope forward (the cue precedes the entity) or backward (it follows), limited
to a window of word tokens, to the sentence, and by terminators ("but", "however", "I" for family...).
Pseudo cues ("no change", "not only", "gram negative") mask the cues they overlap. The cue list extends the
clinical lists with patient phrasing ("no more X", "X is gone", "never had X", "my mum has X",
"in case I get X", "had X last year").

Scope, beyond the cue's window and the sentence:
* the window counts words, but not the words of the other mentions being asserted nor the coordinators
  "and", "or", "nor", so a cue reaches along a list of findings ("no fever, chills, night sweats or weight
  loss"; "tests for influenza, parainfluenza virus, RSV and adenovirus were negative"), as ConText does by
  treating each concept as one token;
* a forward cue that overlaps the start of a mention ("There were no [signs of peritonitis]") applies, and so
  does one that opens it ("[no signs of endocarditis]"), unless the cue is `forward-outside`: there the words
  are the finding itself ("[absence of appetite]", "[negative T waves]");
* a forward cue inside parentheses stops at the closing one ("(without headache or vomiting) and then numbness");
* layout: a line break or a run of 3+ spaces or a tab (table cells flattened to text) ends the scope;
* a short answer typed after a question or a colon stays in the question's sentence ("chest pain? no"), so that the
  answer cue ("Fever: no") reaches the finding it answers;
* a forward cue inside a condition clause ("When I don't sleep, my migraine comes back"; "if I dont eat I get
  headaches") stops at the end of that clause: a comma, or a new subject ("I", "my") after the cue;
* chat spellings: every cue written with "n't" also matches "nt" ("dont", "havent", "couldnt").

Experiencer is reported apart from the assertion (`detect_full`): "other" when a family/other-person cue reaches
the mention, else "patient". When the finding is both someone else's and hypothetical ("What should I do if my son
develops a rash?") the assertion is "hypothetical" and the experiencer "other"; otherwise a finding of someone
else's keeps the assertion "family" (the categories' priority order).

Cost: a handful of compiled regular expressions run once per text; a chat message takes well under 1 ms.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CUES_FILE = Path(__file__).with_name("assertion_cues.tsv")
CATEGORIES: tuple[str, ...] = ("family", "hypothetical", "absent", "possible", "historical")  # priority order
ASSERTIONS: tuple[str, ...] = ("present",) + CATEGORIES
EXPERIENCERS: tuple[str, ...] = ("patient", "other")  # whose finding it is (ConText's experiencer)
DEFAULT = "present"

WORD = re.compile(r"\w+(?:['’]\w+)?")
# Sentence ends: . ! ? ; followed by space, a newline, or layout whitespace (3+ spaces or a tab: table cells
# flattened to text); not inside a number ("37.5").
# A short answer after a question mark stays in the question's sentence ("chest pain? no", "Any fever? Nope.").
_ANSWER = r"(?:no|nope|nah|none|nil|never|not really|not at all|yes|yeah|yep|yup|a bit|a little|sometimes)(?![\w'’])"
_SENTENCE_END = re.compile(r"(?:[.!;]+|\?+(?![ \t]*" + _ANSWER + r"))(?=\s|$)|\n+|[ \t]*\t[ \t]*| {3,}",
                           re.IGNORECASE)
# Condition clauses: a forward cue after one of these (in its own clause) does not reach past the clause.
_CONDITION = re.compile(r"(?<![\w'’])(?:when|whenever|if|unless|every time|each time|as soon as|until|till|once|"
                        r"because|cause|cos|coz|since|after|before)(?![\w'’])", re.IGNORECASE)
# Where a condition clause ends: a comma / dash, or the main clause's new subject after the cue.
_CONDITION_END = re.compile(r"[,–—]|\s-\s|(?<![\w'’])(?:i|i'm|i’m|im|i've|i’ve|ive|my|it|it's|its|then)(?![\w'’])",
                            re.IGNORECASE)
# Words that join the items of a list: not counted against a cue's window.
COORDINATORS = frozenset({"and", "or", "nor"})
DIRECTIONS = ("forward", "forward-outside", "backward", "both")


@dataclass(frozen=True)
class Cue:
    category: str          # one of CATEGORIES, "pseudo" or "terminate"
    direction: str         # one of DIRECTIONS; for terminators the categories they close
    window: int            # word tokens; 0 = unlimited (to the end of the sentence)
    start: int
    end: int


@dataclass(frozen=True)
class _Rule:
    category: str
    direction: str
    window: int
    pattern: re.Pattern


def _phrase_regex(phrase: str) -> str:
    """Spaces match any whitespace; "n't" / "n’t" also match chat spellings without an apostrophe ("dont")."""
    return re.sub(r"n['’]t", "n['’]?t", phrase).replace(" ", r"\s+")


def _alternation(phrases: list[str]) -> str:
    """Word-boundary phrases share one leading look-behind, so positions inside a word fail at once."""
    worded = sorted((p for p in phrases if re.match(r"[\w(]", p)), key=len, reverse=True)
    other = sorted((p for p in phrases if not re.match(r"[\w(]", p)), key=len, reverse=True)
    parts = []
    if worded:
        parts.append(r"(?<![\w'’])(?:" + "|".join(map(_phrase_regex, worded)) + r")(?![\w'’])")
    if other:
        parts.append("(?:" + "|".join(map(_phrase_regex, other)) + ")")
    return "|".join(parts)


def rules_load(path: str | Path = CUES_FILE) -> list[_Rule]:
    """Group the cue rows by (category, direction, window) into one case-insensitive alternation each."""
    groups: dict[tuple[str, str, int], list[str]] = {}
    for line_number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        try:
            category, direction, window, phrase = raw.split("\t")
        except ValueError as error:
            raise ValueError(f"{path}:{line_number}: expected 4 tab-separated columns, got {raw!r}") from error
        if category not in CATEGORIES + ("pseudo", "terminate"):
            raise ValueError(f"{path}:{line_number}: unknown category {category!r}")
        if category != "terminate" and direction not in DIRECTIONS:
            raise ValueError(f"{path}:{line_number}: unknown direction {direction!r}")
        groups.setdefault((category, direction, int(window)), []).append(phrase.strip())
    return [_Rule(category, direction, window, re.compile(_alternation(phrases), re.IGNORECASE))
            for (category, direction, window), phrases in groups.items()]


class AssertionDetector:
    """`detect(text, spans)` -> one assertion per (start, end) span. Stateless after construction; thread-safe."""

    def __init__(self, cues_path: str | Path = CUES_FILE) -> None:
        self.rules = rules_load(cues_path)

    def cues_find(self, text: str) -> list[Cue]:
        found = [Cue(rule.category, rule.direction, rule.window, m.start(), m.end())
                 for rule in self.rules for m in rule.pattern.finditer(text) if m.end() > m.start()]
        pseudo = [c for c in found if c.category == "pseudo"]
        kept = [c for c in found if c.category != "pseudo"
                and not any(p.start <= c.start and c.end <= p.end for p in pseudo)]
        # A cue inside a longer trigger cue is dropped: "no longer have" over "no" (same category), and
        # "not sure if" (possible) over "not" (absent). Terminators are kept whatever they overlap.
        kept.sort(key=lambda c: (c.start, -(c.end - c.start)))
        result: list[Cue] = []
        for cue in kept:
            # A family cue inside a longer hypothetical cue is kept: "if [my son] develops" is both.
            if cue.category != "terminate" and any(
                    not (cue.category == "family" and o.category == "hypothetical") and o.category != "terminate" and o.start <= cue.start and cue.end <= o.end
                    and (o.end - o.start > cue.end - cue.start or o.category == cue.category and o.direction == cue.direction)
                    for o in result):
                continue
            result.append(cue)
        return result

    def detect(self, text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
        """One assertion per (start, end) span, in ASSERTIONS."""
        return [assertion for assertion, _ in self.detect_full(text, spans)]

    def detect_full(self, text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, str]]:
        """(assertion, experiencer) per span; experiencer is in EXPERIENCERS ("patient" or "other")."""
        results = []
        for found in self.categories(text, spans):
            if "family" in found and "hypothetical" in found:
                assertion = "hypothetical"  # someone else's, and not (yet) there: "if my son develops a rash"
            else:
                assertion = next((c for c in CATEGORIES if c in found), DEFAULT)
            results.append((assertion, "other" if "family" in found else "patient"))
        return results

    def categories(self, text: str, spans: Sequence[tuple[int, int]]) -> list[set[str]]:
        """Every category whose cue reaches each span (empty set: present, the patient's)."""
        if not spans:
            return []
        cues = self.cues_find(text)
        if not cues:
            return [set() for _ in spans]
        bounds = sentence_bounds(text)
        starts = [b[0] for b in bounds]
        terminators = [c for c in cues if c.category == "terminate"]
        triggers = [c for c in cues if c.category != "terminate"]
        words = WindowWords(text, spans)
        results = []
        for start, end in spans:
            sentence = bounds[max(bisect_right(starts, start) - 1, 0)]
            found: set[str] = set()
            for cue in triggers:
                if cue.category in found or cue.start < sentence[0] or cue.end > sentence[1]:
                    continue
                forward = cue.direction in ("forward", "forward-outside", "both")
                if cue.start < end and start < cue.end:
                    if forward and cue.end < end and _opens(text, cue, start):
                        found.add(cue.category)
                    continue
                if cue.end <= start and forward:
                    gap = (cue.end, start)
                    if _closes_parenthesis(text, *gap) or _leaves_condition(text, cue, sentence[0], start):
                        continue
                elif cue.start >= end and cue.direction in ("backward", "both"):
                    gap = (end, cue.start)
                else:
                    continue
                if cue.window and words.count(*gap) > cue.window:
                    continue
                if any(gap[0] <= t.start and t.end <= gap[1] and _closes(t, cue.category) for t in terminators):
                    continue
                found.add(cue.category)
            results.append(found)
        return results


def _leaves_condition(text: str, cue: Cue, sentence_start: int, start: int) -> bool:
    """The cue sits in a condition clause ("when I don't sleep", "if I dont eat") and the mention lies past that
    clause's end: a comma or dash, or a new subject ("I", "my", "it") after the cue."""
    clause_start = max(sentence_start, max((text.rfind(mark, sentence_start, cue.start) + 1 for mark in ",;"),
                                           default=sentence_start))
    if not any(m.start() < cue.start for m in _CONDITION.finditer(text, clause_start, cue.start)):
        return False
    return _CONDITION_END.search(text, cue.end, start) is not None


def _closes_parenthesis(text: str, start: int, end: int) -> bool:
    """The gap closes a parenthesis opened before it: a cue inside "(without headache, or vomiting)" does not
    reach past the ")"."""
    depth = 0
    for char in text[start:end]:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return True
    return False


def _opens(text: str, cue: Cue, start: int) -> bool:
    """A forward cue that overlaps a mention's first word applies to it: "no [signs of peritonitis]" (the cue
    starts before the mention) and "[no signs of endocarditis]" (the mention starts with it); a
    `forward-outside` cue only in the first case, because inside the mention it names the finding."""
    if cue.start < start:
        return True
    return cue.direction != "forward-outside" and not WORD.search(text, start, cue.start)


class WindowWords:
    """Counts the words between two offsets that use up a cue's window: all words except those of the mentions
    being asserted and list coordinators. Prefix sums, so each count is two bisections."""

    def __init__(self, text: str, spans: Sequence[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        mention_starts = [m[0] for m in merged]
        self.starts: list[int] = []
        self.counted = [0]
        for match in WORD.finditer(text):
            index = bisect_right(mention_starts, match.start()) - 1
            inside = index >= 0 and match.end() <= merged[index][1]
            self.starts.append(match.start())
            self.counted.append(self.counted[-1] + (not inside and match.group().lower() not in COORDINATORS))

    def count(self, start: int, end: int) -> int:
        """Counted words that start in [start, end)."""
        return self.counted[bisect_right(self.starts, end - 1)] - self.counted[bisect_right(self.starts, start - 1)]


def _closes(terminator: Cue, category: str) -> bool:
    return terminator.direction == "all" or category in terminator.direction.split(",")


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character ranges of sentences; each includes its end punctuation (so a trailing "?" is in scope)."""
    bounds = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        bounds.append((start, match.end()))
        start = match.end()
    if start < len(text) or not bounds:
        bounds.append((start, len(text)))
    return bounds
