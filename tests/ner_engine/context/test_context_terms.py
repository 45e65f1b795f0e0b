"""Term helpers (ner_engine.context.terms): normalising, stemming, word order, lay rewrites, body sites, short
forms a document defines."""
from __future__ import annotations

from ner_engine.context.terms import abbreviations_find, body_sites, lay_rewrite, term_normalise, term_sorted, term_stem


def test_text_helpers():
    assert term_normalise("  Crohn's  Disease! ") == "crohn disease"  # possessive dropped, as in the vocabularies
    assert lay_rewrite("tummy ache") == "abdominal pain"
    assert lay_rewrite("throwing up") == "vomiting"
    assert abbreviations_find("acute renal failure (ARF) was seen; ARF resolved") == {"ARF": "acute renal failure"}
    assert abbreviations_find("a dose (5 mg)") == {}


def test_stems_and_word_order():
    assert term_stem("headaches and allergies") == "headache and allergy"
    assert term_stem("sinus abscess") == "sinus abscess"  # -us, -ss kept
    assert term_sorted("pain abdominal") == term_sorted("abdominal pains") == "abdominal pain"


def test_body_sites():
    assert body_sites("Pain in hip") == {"hip"}
    assert body_sites("tummy ache") == {"abdomen"}
    assert body_sites("headache") == set()
