"""How patients type, resolved before the model and the coder: invisible characters, abbreviations, misspellings.

`surface_view(text)` returns a `SurfaceView`: the text the NER model reads and a map back to the original, so
every span the model finds is reported in the patient's own characters (`span_original`). Three kinds of edit,
none overlapping another:

* format characters (Unicode category Cf: soft hyphen, zero-width non-joiner/joiner, word joiner, BOM, bidi
  controls) are removed; a zero-width space (U+200B) and other non-ASCII spaces (category Zs) become a plain
  space (a zero-width space is a word break by definition: Unicode Standard Annex #29);
* abbreviations (`abbreviations.tsv`: curated, one source each) are expanded, the sense chosen by the words of
  the message when a short form has several ("CP": chest pain / cerebral palsy); upper-case-only short forms
  ("HA", "CP", "MI") are matched only as written, so ordinary words ("ha", "mi") are left alone;
* misspelled medical words are corrected against `medical_words.tsv` (`spelling_correct`).

`mention_resolve(mention)` applies the same edits to a mention's own text, for coding ("SOB" -> "shortness of
breath", "hedache" -> "headache"). Pure Python; the tables load once, lazily, under a lock.
"""
from __future__ import annotations

import csv
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ner_engine.context.terms import abbreviations_find
from ner_engine.context.spelling import spelling_correct

ABBREVIATIONS_FILE = Path(__file__).with_name("abbreviations.tsv")
ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True)
class Abbreviation:
    id: str
    short: str
    expansion: str
    type: str         # SYMPTOM | DISEASE | DRUG | FINDING (a measurement such as blood pressure)
    case: str         # "exact": only as written ("HA"); "any": any case ("uti", "n/v")
    context: str      # regex: words of the message that choose this sense; "" = the default sense
    code: str         # "<system>:<code>" the expansion is expected to reach (checked by the tests)
    source: str


@dataclass(frozen=True)
class Edit:
    start: int        # in the original text
    end: int
    replacement: str
    kind: str         # "format" | "space" | "abbreviation" | "spelling"


class SurfaceView:
    """The edited text (`text`) and the original (`original`); offsets convert both ways (per-character maps:
    messages are short)."""

    def __init__(self, original: str, edits: list[Edit]) -> None:
        self.original = original
        self.edits = sorted(edits, key=lambda e: e.start)
        parts: list[str] = []
        self._view_start: list[int] = []   # per view character: its original start / end
        self._view_end: list[int] = []
        self._orig_start: list[int] = []   # per original character: its view start / end
        self._orig_end: list[int] = []
        position = 0
        for edit in self.edits + [Edit(len(original), len(original), "", "end")]:
            for index in range(position, edit.start):
                view = len(self._view_start)
                self._view_start.append(index)
                self._view_end.append(index + 1)
                self._orig_start.append(view)
                self._orig_end.append(view + 1)
            parts.append(original[position:edit.start])
            if edit.kind == "end":
                break
            view = len(self._view_start)
            for _ in edit.replacement:
                self._view_start.append(edit.start)
                self._view_end.append(edit.end)
            for _ in range(edit.start, edit.end):
                self._orig_start.append(view)
                self._orig_end.append(view + len(edit.replacement))
            parts.append(edit.replacement)
            position = edit.end
        self.text = "".join(parts)

    @property
    def changed(self) -> bool:
        return bool(self.edits)

    def span_original(self, start: int, end: int) -> tuple[int, int]:
        """A [start, end) span of `text` as a span of `original`; a span touching an edited stretch covers all
        of it (a model span "breath" inside "shortness of breath" is the patient's "SOB")."""
        if not self.edits:
            return start, end
        if end <= start:
            point = self._view_start[start] if start < len(self.text) else len(self.original)
            return point, point
        return self._view_start[start], self._view_end[end - 1]

    def span_view(self, start: int, end: int) -> tuple[int, int]:
        """A span of `original` as a span of `text` (edits it touches are covered whole)."""
        if not self.edits:
            return start, end
        if end <= start:
            point = self._orig_start[start] if start < len(self.original) else len(self.text)
            return point, point
        return self._orig_start[start], self._orig_end[end - 1]


def format_edits(text: str) -> list[Edit]:
    """Cf characters removed; U+200B and non-ASCII spaces (Zs) replaced by " "."""
    edits = []
    for index, char in enumerate(text):
        if char == ZERO_WIDTH_SPACE:
            edits.append(Edit(index, index + 1, " ", "space"))
        elif ord(char) > 127:
            category = unicodedata.category(char)
            if category == "Cf":
                edits.append(Edit(index, index + 1, "", "format"))
            elif category == "Zs":
                edits.append(Edit(index, index + 1, " ", "space"))
    return edits


_abbreviations: list[Abbreviation] | None = None
_lock = threading.Lock()


def abbreviations_load(path: str | Path = ABBREVIATIONS_FILE) -> list[Abbreviation]:
    """Rows of the abbreviation table. Raises ValueError on a row without expansion, type, case or source."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.DictReader((l for l in handle if not l.startswith("#")),
                                                         delimiter="\t"), 2):
            entry = Abbreviation(**{k: (v or "").strip() for k, v in row.items()})
            if not (entry.expansion and entry.type and entry.case in ("exact", "any") and entry.source):
                raise ValueError(f"{path}: row {line_number}: incomplete abbreviation {row!r}")
            rows.append(entry)
    return rows


def abbreviations() -> list[Abbreviation]:
    global _abbreviations
    if _abbreviations is None:
        with _lock:
            if _abbreviations is None:
                _abbreviations = abbreviations_load()
    return _abbreviations


@lru_cache(maxsize=1)
def _abbreviation_pattern() -> tuple[re.Pattern, re.Pattern, dict[str, list[Abbreviation]], dict[str, list[Abbreviation]]]:
    exact: dict[str, list[Abbreviation]] = {}
    anycase: dict[str, list[Abbreviation]] = {}
    for entry in abbreviations():
        (exact if entry.case == "exact" else anycase).setdefault(
            entry.short if entry.case == "exact" else entry.short.lower(), []).append(entry)

    def alternation(forms) -> str:
        return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))

    boundary = r"(?<![\w/&+])(?:{})(?![\w/&+])"
    return (re.compile(boundary.format(alternation(exact))), re.compile(boundary.format(alternation(anycase)), re.I),
            exact, anycase)


def abbreviation_sense(senses: list[Abbreviation], text: str) -> Abbreviation | None:
    """The sense whose context words occur in the message, else the one without context (the default), else
    None: "sob" is expanded only near words of breathing ("sob when I walk upstairs"), never in "I sob"."""
    for sense in senses:
        if sense.context and re.search(sense.context, text, re.IGNORECASE):
            return sense
    return next((s for s in senses if not s.context), None)


_PARENTHESISED_SHORT = re.compile(r"\(\s*([A-Za-z][\w&/+-]{0,9})\s*\)")


def abbreviation_edits(text: str) -> list[Edit]:
    """Table expansions of the short forms in `text`, except those the text defines itself ("myotonic dystrophy
    (DM)": there DM is not diabetes mellitus)."""
    exact_pattern, any_pattern, exact, anycase = _abbreviation_pattern()
    defined: set[str] = set()
    if "(" in text:  # any parenthesised short form: "myotonic dystrophy (DM)" defines DM even without its letters
        defined = {short.lower() for short in abbreviations_find(text)}
        defined |= {m.group(1).lower() for m in _PARENTHESISED_SHORT.finditer(text)}
    edits = []
    for pattern, table, key in ((exact_pattern, exact, str), (any_pattern, anycase, str.lower)):
        for match in pattern.finditer(text):
            senses = table.get(key(match.group()))
            if senses and match.group().lower() not in defined:
                sense = abbreviation_sense(senses, text)
                if sense is not None:
                    edits.append(Edit(match.start(), match.end(), sense.expansion, "abbreviation"))
    return edits


_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|^\s*)$")


def spelling_edits(text: str) -> list[Edit]:
    edits = []
    for match in _WORD.finditer(text):
        word = match.group()
        if word[:1].isupper() and not _SENTENCE_START.search(text, 0, match.start()):
            continue  # a capitalised word inside a sentence is a name ("Swedes", "Cowden")
        corrected = spelling_correct(word)
        if corrected is not None:
            edits.append(Edit(match.start(), match.end(), corrected, "spelling"))
    return edits


def surface_view(text: str, *, format_characters: bool = True, abbreviations: bool = True,
                 spelling: bool = True) -> SurfaceView:
    """The text for the model with the edits asked for; an edit overlapping an earlier kind's is dropped
    (format characters first, then abbreviations, then spelling)."""
    chosen: list[Edit] = []
    for wanted, finder in ((format_characters, format_edits), (abbreviations, abbreviation_edits),
                           (spelling, spelling_edits)):
        if not wanted:
            continue
        if chosen and finder is not format_edits:
            # Abbreviations and words are found in the text without format characters ("a\u200cHA"), then
            # mapped back to the original.
            base = SurfaceView(text, chosen)
            found = [Edit(*base.span_original(e.start, e.end), e.replacement, e.kind) for e in finder(base.text)]
        else:
            found = finder(text)
        for edit in found:
            if not any(edit.start < c.end and c.start < edit.end for c in chosen):
                chosen.append(edit)
    return SurfaceView(text, chosen)


def mention_resolve(mention: str) -> str:
    """A mention's text with abbreviations expanded and misspellings corrected ("SOB" -> "shortness of breath",
    "bad hedache" -> "bad headache"); unchanged when there is nothing to resolve."""
    return surface_view(mention).text


def model_views(texts) -> list[SurfaceView]:
    """`surface_view` of each text: what the NER model reads."""
    return [surface_view(text) for text in texts]


def candidates_original(view: SurfaceView, candidates) -> list[tuple[int, int, object]]:
    """(start, end, candidate) in the original text for model candidates (objects with `start`, `end`, `type`,
    `score`) found in `view.text`; two candidates of one type that land on the same original span (the two words
    of "nausea and vomiting" from "n/v") become one, the higher-scoring."""
    kept: dict[tuple[int, int, str], tuple[int, int, object]] = {}
    for candidate in candidates:
        start, end = view.span_original(candidate.start, candidate.end)
        while start < end and view.original[start].isspace():
            start += 1
        while end > start and view.original[end - 1].isspace():
            end -= 1
        if end <= start:
            continue
        key = (start, end, candidate.type)
        if key not in kept or kept[key][2].score < candidate.score:
            kept[key] = (start, end, candidate)
    return sorted(kept.values(), key=lambda item: (item[0], item[1]))
