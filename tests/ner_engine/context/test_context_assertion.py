"""Assertion rules: each family of cues (clinical and patient phrasing), scopes, terminators, pseudo cues."""
from __future__ import annotations

import pytest

from ner_engine.context.assertion import ASSERTIONS, AssertionDetector, rules_load, sentence_bounds


@pytest.fixture(scope="module")
def detector():
    return AssertionDetector()


def assertion_of(detector, text: str, mention: str, occurrence: int = 0) -> str:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(mention, start + 1)
    return detector.detect(text, [(start, start + len(mention))])[0]


@pytest.mark.parametrize("text, mention, expected", [
    # plain statements
    ("I have a headache", "headache", "present"),
    ("fever for three days, quite bad", "fever", "present"),
    # negation: clinical NegEx cues, forward and backward
    ("no fever", "fever", "absent"),
    ("Patient denies chest pain or shortness of breath", "shortness of breath", "absent"),
    ("without nausea", "nausea", "absent"),
    ("Chest X-ray was negative for pneumonia", "pneumonia", "absent"),
    ("Malignancy was ruled out", "Malignancy", "absent"),
    # negation: patient phrasing
    ("no more headaches since Tuesday", "headaches", "absent"),
    ("the rash is gone now", "rash", "absent"),
    ("I never had asthma", "asthma", "absent"),
    ("I don't have a cough anymore", "cough", "absent"),
    ("Not anymore, the nausea stopped", "nausea", "absent"),
    ("I haven't had any dizziness", "dizziness", "absent"),
    ("I no longer get migraines", "migraines", "absent"),
    ("I couldn't feel a lump", "lump", "absent"),
    # possible
    ("maybe it's a migraine", "migraine", "possible"),
    ("Could it be flu?", "flu", "possible"),
    ("I think I might have tonsillitis", "tonsillitis", "possible"),
    ("not sure if this is eczema", "eczema", "possible"),
    ("findings suspicious for appendicitis", "appendicitis", "possible"),
    # historical
    ("I had shingles last year", "shingles", "historical"),
    ("I used to have eczema as a kid", "eczema", "historical"),
    ("history of asthma", "asthma", "historical"),
    ("I had a kidney stone 5 years ago", "kidney stone", "historical"),
    # hypothetical
    ("what should I take in case I get a migraine", "migraine", "hypothetical"),
    ("what if I get a fever", "fever", "hypothetical"),
    ("I'm worried about getting diabetes", "diabetes", "hypothetical"),
    ("call us if chest pain develops", "chest pain", "hypothetical"),
    ("Should I worry if a rash appears?", "rash", "hypothetical"),
    ("If the pain is bad I take paracetamol", "pain", "present"),  # a definite "the pain": it is there
    # family / other experiencer
    ("My mum has diabetes", "diabetes", "family"),
    ("my brother had a seizure", "seizure", "family"),
    ("heart disease runs in my family", "heart disease", "family"),
    ("family history of breast cancer", "breast cancer", "family"),
])
def test_rule_families(detector, text, mention, expected):
    assert assertion_of(detector, text, mention) == expected


def test_terminators_close_the_scope(detector):
    assert assertion_of(detector, "No fever but a bad cough", "cough") == "present"
    assert assertion_of(detector, "My mum has diabetes and I have a headache", "headache") == "present"
    assert assertion_of(detector, "My brother was diagnosed with asthma and I have a cough", "cough") == "present"


def test_scope_ends_at_the_sentence(detector):
    assert assertion_of(detector, "No fever. Headache since Monday.", "Headache") == "present"
    assert sentence_bounds("No fever. Headache.") == [(0, 9), (9, 19)]
    assert sentence_bounds("Temp 37.5 today") == [(0, 15)]


def test_list_after_negation_is_negated(detector):
    text = "no fever, cough or rash"
    assert [assertion_of(detector, text, m) for m in ("fever", "cough", "rash")] == ["absent"] * 3
    assert assertion_of(detector, "headache, no fever", "headache") == "present"


def test_window_limits_forward_scope(detector):
    text = "no problems with my knees over the whole long hike up and down the hill, just a headache"
    assert assertion_of(detector, text, "headache") == "present"


def test_pseudo_cues_do_not_negate(detector):
    assert assertion_of(detector, "no change in the headache", "headache") == "present"
    assert assertion_of(detector, "gram negative sepsis", "sepsis") == "present"
    assert assertion_of(detector, "not sure but I have a rash", "rash") == "present"


def test_priority_family_over_negation(detector):
    assert assertion_of(detector, "my dad never had cancer", "cancer") == "family"


def test_many_spans_and_empty_input(detector):
    text = "headache and no fever"
    assert detector.detect(text, [(0, 8), (16, 21)]) == ["present", "absent"]
    assert detector.detect(text, []) == []
    assert detector.detect("I feel fine", [(7, 11)]) == ["present"]


def test_rule_file_is_valid():
    rules = rules_load()
    categories = {rule.category for rule in rules}
    assert set(ASSERTIONS[1:]) <= categories and {"pseudo", "terminate"} <= categories


def test_bad_rule_file_is_reported(tmp_path):
    path = tmp_path / "cues.tsv"
    path.write_text("absent\tforward\t8\n")
    with pytest.raises(ValueError, match="4 tab-separated"):
        rules_load(path)
    path.write_text("negated\tforward\t8\tno\n")
    with pytest.raises(ValueError, match="unknown category"):
        rules_load(path)


@pytest.mark.parametrize("text, mention, expected", [
    # a cue reaches along a list: the other mentions and "and"/"or" do not use up its window
    ("without associated complaints of neck pain, stridor, dysphonia, dysphagia, malaise, fever, or chills",
     "chills", "absent"),
    # ... backward too
    ("Tests for influenza, parainfluenza virus, respiratory syncytial virus, and adenovirus were negative",
     "influenza", "absent"),
    # "denied" governs its whole object
    ("She denied current or previous use of HT or a prior history of pelvic pain or dysmenorrhoea",
     "dysmenorrhoea", "absent"),
])
def test_list_scope(detector, text, mention, expected):
    mentions = ["neck pain", "stridor", "dysphonia", "dysphagia", "malaise", "fever", "chills", "influenza",
                "parainfluenza virus", "respiratory syncytial virus", "adenovirus", "pelvic pain", "dysmenorrhoea"]
    spans = [(text.index(m), text.index(m) + len(m)) for m in mentions if m in text]
    target = (text.index(mention), text.index(mention) + len(mention))
    assert dict(zip(spans, detector.detect(text, spans)))[target] == expected


def test_list_scope_needs_the_other_mentions(detector):
    """Without the list items as mentions the same words count, and the window ends the scope."""
    text = "without associated complaints of neck pain, stridor, dysphonia, dysphagia, malaise, fever, or chills"
    assert assertion_of(detector, text, "chills") == "present"


@pytest.mark.parametrize("text, mention, expected", [
    ("There were no signs of peritonitis.", "signs of peritonitis", "absent"),   # cue overlaps the mention
    ("no signs of endocarditis", "no signs of endocarditis", "absent"),          # cue opens the mention
    ("combined with absence of appetite and vomiting", "absence of appetite", "present"),  # names the finding
    ("absence of appetite", "appetite", "absent"),
    ("Chest radiographs were reportedly negative.", "Chest radiographs", "absent"),
    ("A buccal swab was negative for influenza A.", "buccal swab", "present"),
    ("A buccal swab was negative for influenza A.", "influenza A", "absent"),
    ("pulmonary, cardiac and abdominal examinations revealed no abnormality", "abnormality", "absent"),
    ("Cervical lymph nodes were not palpable", "Cervical lymph nodes", "absent"),
    ("The patient had no family history of breast cancer", "breast cancer", "absent"),
    ("CT failed to reveal any abnormalities, such as brain swelling", "brain swelling", "absent"),
    ("Emergency CT excluded pulmonary embolism", "pulmonary embolism", "absent"),
])
def test_clinical_cues_and_scope(detector, text, mention, expected):
    assert assertion_of(detector, text, mention) == expected


@pytest.mark.parametrize("text, mention", [
    ("The nausea started (without headache or vomit) and then the numbness", "numbness"),     # parenthesis
    ("Patient 1   No   Hypothyroidism", "Hypothyroidism"),                                   # table cells
    ("Patient 1 44 y Male White No 1 y Hypothyroidism", "Hypothyroidism"),                   # "No" + number
    ("would not wake for feeding, and had a weak suck", "weak suck"),                        # new clause
    ("without breach of the adventitia, consistent with a rectal carcinoma", "rectal carcinoma"),
    ("revealed no ova in the stools, and the stool culture yielded nothing", "stool culture"),
    ("common but not severe problems of post-polio patients", "post-polio patients"),
    ("The organism was catalase-negative, consistent with Streptococcus", "Streptococcus"),
    ("treated with antibiotics without improvement in the ulcer", "ulcer"),
    ("free T4 was low and anemia was found", "anemia"),
    ("the rash hasn't cleared up", "rash"),
    ("my cough has not gone away", "cough"),
])
def test_scope_stops(detector, text, mention):
    assert assertion_of(detector, text, mention) != "absent"


def test_postpositive_free(detector):
    assert assertion_of(detector, "I have been pain free for a week", "pain") == "absent"
    assert assertion_of(detector, "The patient was disease-free 2 years after surgery", "disease") == "absent"


def test_bad_direction_is_reported(tmp_path):
    path = tmp_path / "cues.tsv"
    path.write_text("absent\tsideways\t8\tno\n")
    with pytest.raises(ValueError, match="unknown direction"):
        rules_load(path)
