"""Tests for the rule-based triage engine (consult/triage). Pure Python: no Django needed."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consult.triage import SLOTS, URGENCY_LEVELS, Question, TriageDecision, TriageEngine, TriageInput
from consult.triage.engine import ASSERTIONS, RULES_PATH, is_negated

RULES_JSON = json.loads(RULES_PATH.read_text(encoding="utf-8"))
RULE_IDS = [r["id"] for r in RULES_JSON["rules"]]
RED_FLAG_IDS = [r["id"] for r in RULES_JSON["rules"] if r["kind"] == "red_flag"]
ENGINE = TriageEngine.default()

ALL_FILLED = {
    "main_symptoms": "headache",
    "duration": "since yesterday",
    "severity": "mild",
    "medications": None,
    "conditions": None,
}


def inp(
    *texts: str,
    entities: tuple[dict, ...] = (),
    filled: dict | None = None,
    asked: tuple[str, ...] = (),
    pending: str | None = None,
    urgency: str | None = None,
) -> TriageInput:
    return TriageInput(
        patient_texts=texts,
        entities=entities,
        filled_slots=dict(filled or {}),
        asked_slots=frozenset(asked),
        pending_slot=pending,
        urgency=urgency,
    )


def ent(type_: str, text: str, **extra) -> dict:
    return {"type": type_, "text": text, **extra}


def fired_ids(decision: TriageDecision) -> list[str]:
    return [f.rule_id for f in decision.fired]


def all_but(slot: str, **overrides) -> dict:
    filled = {k: v for k, v in ALL_FILLED.items() if k != slot}
    filled.update(overrides)
    return filled


# --------------------------------------------------------------------------- every shipped rule

# red flag id -> (text that fires it, the same finding negated)
RED_FLAG_CASES = {
    "rf_chest_pain_sweating": ("I have crushing chest pain and I'm sweating a lot", "I don't have chest pain or sweating"),
    "rf_chest_pain_radiating": ("My chest hurts and the pain is spreading to my left arm", "I have no chest pain spreading to my arm"),
    "rf_stroke_signs": ("Her face is drooping and her speech is slurred", "No face drooping, no arm weakness and no slurred speech"),
    "rf_suicidal_thoughts": ("I have been having suicidal thoughts", "I am not suicidal and have no thoughts of self-harm"),
    "rf_overdose": ("I took too many pills an hour ago", "I have not taken an overdose"),
    "rf_severe_breathing_difficulty": ("I can't breathe and my lips are blue", "I am not gasping for air"),
    "rf_shortness_of_breath": ("I get short of breath climbing stairs", "No shortness of breath"),
    "rf_meningitis_signs": ("My son has a stiff neck, a high fever and a rash", "He has a fever but no stiff neck and no rash"),
    "rf_coughing_vomiting_blood": ("I've been coughing up blood since this morning", "I'm coughing but not coughing up blood"),
    "rf_anaphylaxis": ("After eating peanuts my throat is swelling and I feel dizzy", "No throat swelling or tongue swelling"),
    "rf_thunderclap_headache": ("Suddenly I got the worst headache of my life", "It is not the worst headache I've had"),
    "rf_seizure_unresponsive": ("My husband just had a seizure", "He has never had a seizure"),
    "rf_very_high_fever": ("My temperature is 40.2 degrees", "I don't have a very high fever"),
}

# rule id -> an input on which it fires
RULE_EXAMPLES: dict[str, TriageInput] = {
    **{rid: inp(fire) for rid, (fire, _) in RED_FLAG_CASES.items()},
    "fill_main_symptoms_symptom": inp("I have a headache", entities=(ent("SYMPTOM", "headache"),)),
    "fill_main_symptoms_disease": inp("I think I have the flu", entities=(ent("DISEASE", "flu", assertion="possible"),)),
    "fill_duration_entity": inp("for 3 days", entities=(ent("DURATION", "3 days"),)),
    "fill_duration_text": inp("It started 3 weeks ago"),
    "fill_duration_answer": inp("headache", "two days", pending="duration"),
    "fill_severity_entity": inp("it is moderate", entities=(ent("SEVERITY", "moderate"),)),
    "fill_severity_text": inp("it's really bad, like 7/10"),
    "fill_severity_answer": inp("headache", "7", pending="severity"),
    "fill_medications_drug": inp("I take ibuprofen", entities=(ent("DRUG", "ibuprofen"),)),
    "fill_medications_none_phrase": inp("I'm not taking any medicine"),
    "fill_conditions_disease": inp(
        "I have a cough and I have asthma", entities=(ent("SYMPTOM", "cough"), ent("DISEASE", "asthma"))
    ),
    "fill_conditions_none_phrase": inp("I have no known medical conditions"),
    "none_answer": inp("headache", "none", pending="medications"),
    "ask_main_symptoms": inp("hello", filled=all_but("main_symptoms")),
    "ask_duration": inp("hello", filled=all_but("duration")),
    "ask_severity": inp("hello", filled=all_but("severity")),
    "ask_medications": inp("hello", filled=all_but("medications")),
    "ask_conditions": inp("hello", filled=all_but("conditions")),
    "close_consultation_severe": inp("thanks", filled=all_but("severity", severity="severe")),
    "close_consultation_long_duration": inp("thanks", filled=all_but("duration", duration="for three weeks")),
    "close_self_care": inp("thanks", filled=ALL_FILLED),
}


def test_every_shipped_rule_has_an_example():
    assert len(RULE_IDS) == len(set(RULE_IDS))
    assert set(RULE_EXAMPLES) == set(RULE_IDS)
    assert set(RED_FLAG_CASES) == set(RED_FLAG_IDS)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_fires_on_its_example(rule_id):
    decision = ENGINE.decide(RULE_EXAMPLES[rule_id])
    assert rule_id in fired_ids(decision)
    fired = next(f for f in decision.fired if f.rule_id == rule_id)
    assert fired.reason  # human-readable, names the evidence where there is any


@pytest.mark.parametrize("rule_id", RED_FLAG_IDS)
def test_red_flag_does_not_fire_when_negated(rule_id):
    _, negated = RED_FLAG_CASES[rule_id]
    decision = ENGINE.decide(inp(negated))
    assert rule_id not in fired_ids(decision)


@pytest.mark.parametrize("rule_id", RED_FLAG_IDS)
def test_red_flag_sets_urgency_and_advice(rule_id):
    rule = next(r for r in ENGINE.rules if r.id == rule_id)
    decision = ENGINE.decide(RULE_EXAMPLES[rule_id])
    assert decision.urgency is not None
    assert URGENCY_LEVELS.index(decision.urgency) <= URGENCY_LEVELS.index(rule.urgency)
    assert decision.advice
    assert next(f for f in decision.fired if f.rule_id == rule_id).urgency == rule.urgency


# --------------------------------------------------------------------------- red flags in detail


def test_reason_names_rule_and_matched_phrase():
    decision = ENGINE.decide(inp("I have crushing chest pain and I'm sweating a lot"))
    fired = next(f for f in decision.fired if f.rule_id == "rf_chest_pain_sweating")
    assert fired.urgency == "emergency_ambulance"
    assert "'sweating'" in fired.reason and "chest" in fired.reason


def test_meningitis_non_blanching_rash_alone():
    decision = ENGINE.decide(inp("There's a rash that doesn't fade when I press a glass on it"))
    assert "rf_meningitis_signs" in fired_ids(decision)


def test_emergency_stops_questions_and_closes_with_advice():
    decision = ENGINE.decide(inp("I have crushing chest pain and I'm sweating"))
    assert decision.urgency == "emergency_ambulance"
    assert decision.question is None and decision.complete
    assert "ambulance" in decision.advice
    assert decision.summary and decision.advice in decision.summary
    assert not any(f.rule_id.startswith("close_") for f in decision.fired)


def test_lower_red_flag_keeps_asking():
    decision = ENGINE.decide(inp("I get short of breath"))
    assert decision.urgency == "consultation_24"
    assert decision.advice
    assert decision.question is not None and not decision.complete


def test_most_urgent_advice_wins():
    decision = ENGINE.decide(inp("I am short of breath and I can't breathe"))
    assert {"rf_shortness_of_breath", "rf_severe_breathing_difficulty"} <= set(fired_ids(decision))
    assert decision.urgency == "emergency_ambulance"
    severe = next(r for r in ENGINE.rules if r.id == "rf_severe_breathing_difficulty")
    assert decision.advice == severe.advice


def test_red_flag_from_entities_alone():
    entities = (ent("SYMPTOM", "chest pain"), ent("SYMPTOM", "diaphoresis"))
    assert "rf_chest_pain_sweating" in fired_ids(ENGINE.decide(inp("help", entities=entities)))


@pytest.mark.parametrize("assertion", ["absent", "family", "hypothetical"])
def test_blocked_assertions_do_not_fire_red_flags(assertion):
    entities = (ent("SYMPTOM", "chest pain", assertion=assertion), ent("SYMPTOM", "sweating", assertion=assertion))
    decision = ENGINE.decide(inp("My father had chest pain and sweating", entities=entities))
    assert "rf_chest_pain_sweating" not in fired_ids(decision)


@pytest.mark.parametrize("assertion", ["present", "possible", "historical", None])
def test_other_assertions_fire_red_flags(assertion):
    extra = {} if assertion is None else {"assertion": assertion}
    entities = (ent("SYMPTOM", "chest pain", **extra), ent("SYMPTOM", "sweating", **extra))
    assert "rf_chest_pain_sweating" in fired_ids(ENGINE.decide(inp("symptoms", entities=entities)))


def test_assertion_inside_attributes_is_honoured():
    entities = (
        ent("SYMPTOM", "chest pain", attributes={"assertion": "family"}),
        ent("SYMPTOM", "sweating", attributes={"assertion": "family"}),
    )
    decision = ENGINE.decide(inp("My mother had chest pain and sweating", entities=entities))
    assert "rf_chest_pain_sweating" not in fired_ids(decision)


def test_entity_without_assertion_that_is_only_negated_in_text_is_absent():
    entities = (ent("SYMPTOM", "chest pain"), ent("SYMPTOM", "sweating"))
    decision = ENGINE.decide(inp("I have no chest pain and no sweating", entities=entities))
    assert "rf_chest_pain_sweating" not in fired_ids(decision)


def test_red_flag_in_an_earlier_message_still_counts():
    decision = ENGINE.decide(
        inp("I've been coughing up blood", "two days", filled={"main_symptoms": "cough"}, asked=("main_symptoms", "duration"), pending="duration")
    )
    assert decision.urgency == "emergency"


@pytest.mark.parametrize(
    ("text", "phrase", "negated"),
    [
        ("no chest pain", "chest pain", True),
        ("i deny any chest pain", "chest pain", True),
        ("i haven't had any chest pain", "chest pain", True),
        ("no, i have chest pain", "chest pain", False),  # the scope ends at punctuation
        ("no fever but chest pain", "chest pain", False),
        ("i have no idea why i have chest pain", "chest pain", False),  # pseudo-negation
        ("i can't stop coughing up blood", "coughing up blood", False),
        ("not one two three four five six chest pain", "chest pain", False),  # outside the window
    ],
)
def test_negation_window(text, phrase, negated):
    assert is_negated(text, text.index(phrase)) is negated


# --------------------------------------------------------------------------- slots and questions


def test_slot_priority_order():
    """With unhelpful answers the engine walks the slots in the spec's priority order, once each."""
    asked: list[str] = []
    texts = ["hello"]
    pending = None
    for _ in range(10):
        decision = ENGINE.decide(inp(*texts, asked=tuple(asked), pending=pending))
        if decision.question is None:
            break
        asked.append(decision.question.slot)
        pending = decision.question.slot
        texts.append("hmm")
    assert asked == list(SLOTS)
    assert decision.complete and decision.summary
    assert "not provided" in decision.summary


def test_filled_slots_are_skipped():
    decision = ENGINE.decide(inp("I have had a headache for two days", entities=(ent("SYMPTOM", "headache"),)))
    assert decision.filled_slots["main_symptoms"] == "headache"
    assert decision.filled_slots["duration"] == "for two days"
    assert decision.question == Question("severity", decision.question.text, "ask_severity")


def test_never_asks_the_same_question_twice():
    decision = ENGINE.decide(inp("headache", "I'm not sure", filled={"main_symptoms": "headache"}, asked=("main_symptoms", "duration"), pending="duration"))
    assert decision.question is not None and decision.question.slot == "severity"
    # The pending slot counts as asked even if the caller forgot to add it to asked_slots.
    decision = ENGINE.decide(inp("headache", "hmm", filled={"main_symptoms": "headache"}, pending="duration"))
    assert decision.question.slot == "severity"


def test_all_questions_asked_but_unanswered_closes():
    decision = ENGINE.decide(inp("hmm", asked=SLOTS))
    assert decision.question is None and decision.complete
    assert decision.urgency == "self_care"


@pytest.mark.parametrize("answer", ["none", "No", "nothing", "nope", "No medications", "I don't take any", "none at all."])
def test_none_answer_fills_pending_slot_as_empty(answer):
    decision = ENGINE.decide(inp("headache", answer, filled=all_but("medications"), asked=SLOTS[:4], pending="medications"))
    assert "medications" in decision.filled_slots and decision.filled_slots["medications"] is None
    assert decision.complete
    assert "current medications: none" in decision.summary


def test_none_answer_for_conditions():
    decision = ENGINE.decide(inp("headache", "no", filled=all_but("conditions"), asked=SLOTS, pending="conditions"))
    assert decision.filled_slots["conditions"] is None
    assert "none_answer" in fired_ids(decision)


def test_none_answer_only_applies_to_the_pending_slot():
    decision = ENGINE.decide(inp("no", filled={"main_symptoms": "headache"}))
    assert "duration" not in decision.filled_slots and "medications" not in decision.filled_slots


def test_evidence_beats_a_none_answer():
    decision = ENGINE.decide(
        inp("headache", "No, but I take ibuprofen", entities=(ent("DRUG", "ibuprofen"),), filled=all_but("medications"), pending="medications")
    )
    assert decision.filled_slots["medications"] == "ibuprofen"
    assert "none_answer" not in fired_ids(decision)


def test_explicit_none_is_upgraded_by_a_later_drug():
    decision = ENGINE.decide(inp("oh, I do take ibuprofen", entities=(ent("DRUG", "ibuprofen"),), filled=ALL_FILLED))
    assert decision.filled_slots["medications"] == "ibuprofen"


def test_real_values_are_not_overwritten():
    decision = ENGINE.decide(inp("I take paracetamol", entities=(ent("DRUG", "paracetamol"),), filled={"medications": "ibuprofen"}))
    assert decision.filled_slots["medications"] == "ibuprofen"


def test_absent_drug_does_not_fill_medications():
    decision = ENGINE.decide(inp("I don't take aspirin", entities=(ent("DRUG", "aspirin", assertion="absent"),)))
    assert "medications" not in decision.filled_slots


def test_complaint_disease_is_not_a_known_condition():
    entities = (ent("DISEASE", "flu", assertion="possible"), ent("DISEASE", "diabetes"))
    decision = ENGINE.decide(inp("I think I have the flu, and I have diabetes", entities=entities))
    assert decision.filled_slots["main_symptoms"] == "flu"
    assert decision.filled_slots["conditions"] == "diabetes"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I've had it for two days", "for two days"),
        ("it started since Monday", "since monday"),
        ("it began 3 weeks ago", "3 weeks ago"),
        ("it started yesterday", "yesterday"),
        ("since this morning", "since this morning"),
        ("it started this morning", "this morning"),
    ],
)
def test_duration_phrases(text, expected):
    assert ENGINE.decide(inp(text)).filled_slots["duration"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("it's mild", "mild"), ("moderate", "moderate"), ("severe", "severe"), ("it's really bad", "really bad"), ("about 7/10", "7/10"), ("not that bad", "not that bad")],
)
def test_severity_phrases(text, expected):
    assert ENGINE.decide(inp(text)).filled_slots["severity"] == expected


# --------------------------------------------------------------------------- urgency and closing


def test_urgency_never_decreases():
    decision = ENGINE.decide(inp("thanks", filled=ALL_FILLED, urgency="emergency"))
    assert decision.urgency == "emergency"
    decision = ENGINE.decide(inp("thanks", filled=ALL_FILLED, urgency="consultation_24"))
    assert decision.urgency == "consultation_24"  # the self-care closing does not lower it
    decision = ENGINE.decide(inp("hello", urgency="consultation"))
    assert decision.urgency == "consultation"


def test_no_urgency_before_completion_without_red_flags():
    assert ENGINE.decide(inp("I have a headache", entities=(ent("SYMPTOM", "headache"),))).urgency is None


def test_closing_summary():
    filled = {"main_symptoms": "headache", "duration": "for two days", "severity": "mild", "medications": "ibuprofen", "conditions": None}
    decision = ENGINE.decide(inp("no", filled=filled, asked=SLOTS, pending="conditions"))
    assert decision.complete and decision.question is None
    assert decision.urgency == "self_care"
    assert decision.advice is None  # advice is reserved for red flags
    for piece in ("headache", "for two days", "mild", "ibuprofen", "known conditions: none", "self-care"):
        assert piece in decision.summary
    assert "close_self_care" in fired_ids(decision)


@pytest.mark.parametrize(
    ("filled", "entities", "expected"),
    [
        (all_but("severity", severity="8/10"), (), "consultation"),
        (all_but("severity", severity="not severe"), (), "self_care"),
        (all_but("duration", duration="for 10 days"), (), "consultation"),
        (all_but("duration", duration="for 2 days"), (), "self_care"),
        (ALL_FILLED, (ent("SYMPTOM", "headache", attributes={"severity": "severe"}),), "consultation"),
        (ALL_FILLED, (ent("SYMPTOM", "cough", duration="3 weeks"),), "consultation"),  # flattened Entity.to_dict()
    ],
)
def test_default_urgency_when_complete(filled, entities, expected):
    assert ENGINE.decide(inp("ok", filled=filled, entities=entities)).urgency == expected


def test_to_dict_is_json_serialisable():
    decision = ENGINE.decide(inp("I have crushing chest pain and sweating"))
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["urgency"] == "emergency_ambulance"
    assert data["fired"][0]["rule_id"] == "rf_chest_pain_sweating"
    asking = ENGINE.decide(inp("hello")).to_dict()
    assert asking["question"] == {"slot": "main_symptoms", "text": asking["question"]["text"], "rule_id": "ask_main_symptoms"}


def test_rejects_unknown_input_urgency():
    with pytest.raises(ValueError, match="unknown urgency"):
        ENGINE.decide(inp("hi", urgency="urgent"))


def test_does_not_import_django():
    code = "import sys, consult.triage; consult.triage.TriageEngine.default(); assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# --------------------------------------------------------------------------- rules-file validation


def mutated(change) -> dict:
    data = copy.deepcopy(RULES_JSON)
    change(data)
    return data


def rule(data: dict, rule_id: str) -> dict:
    return next(r for r in data["rules"] if r["id"] == rule_id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (lambda d: rule(d, "rf_overdose").update(priority=1), r"rule 'rf_overdose': unknown key\(s\) \['priority'\]"),
        (lambda d: d["rules"].append(copy.deepcopy(rule(d, "rf_overdose"))), r"rule 'rf_overdose': duplicate id"),
        (lambda d: rule(d, "rf_overdose").update(urgency="urgent"), r"rule 'rf_overdose'.*bad urgency 'urgent'"),
        (lambda d: rule(d, "close_self_care").update(urgency="soon"), r"bad urgency 'soon'"),
        (lambda d: d.update(stop_questions_at="asap"), r"stop_questions_at: bad urgency"),
        (lambda d: rule(d, "rf_overdose").update(kind="warning"), r"unknown kind 'warning'"),
        (lambda d: rule(d, "rf_overdose").pop("advice"), r"missing key\(s\) \['advice'\]"),
        (lambda d: rule(d, "rf_overdose").update(when={"mention": {"regex": ["(unclosed"]}}), r"invalid regular expression"),
        (lambda d: rule(d, "rf_overdose").update(when={"smell": {"terms": ["x"]}}), r"unknown condition 'smell'"),
        (lambda d: rule(d, "rf_overdose").update(when={"text": {"terms": ["x"], "fuzzy": True}}), r"unknown key\(s\) \['fuzzy'\]"),
        (lambda d: rule(d, "rf_overdose").update(when={"text": {}}), r"needs 'terms' or 'regex'"),
        (lambda d: rule(d, "rf_overdose").update(when={"entity": {"assertions": ["maybe"]}}), r"unknown assertion"),
        (lambda d: rule(d, "ask_duration").update(slot="mood"), r"unknown slot 'mood'"),
        (lambda d: d["rules"].remove(rule(d, "ask_duration")), r"one question rule per slot"),
        (lambda d: rule(d, "close_self_care").update(when={"pending": "duration"}), r"fallback closing rule"),
        (lambda d: d["urgency_advice"].pop("self_care"), r"urgency_advice: missing key"),
        (lambda d: rule(d, "rf_overdose").update(id="RF-Overdose"), r"ids are lowercase"),
    ],
)
def test_rules_validation_errors(change, message):
    with pytest.raises(ValueError, match=message):
        TriageEngine.from_dict(mutated(change))


def test_from_file_round_trip_and_bad_json(tmp_path):
    good = tmp_path / "rules.json"
    good.write_text(json.dumps(RULES_JSON), encoding="utf-8")
    assert [r.id for r in TriageEngine.from_file(good).rules] == RULE_IDS
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        TriageEngine.from_file(bad)


def test_rules_expose_id_description_and_source():
    for r in ENGINE.rules:
        assert r.id and r.description and r.source["id"] == r.id


# --------------------------------------------------------------------------- property test

_words = st.sampled_from(
    ["no", "not", "chest pain", "sweating", "none", "7/10", "for two days", "severe", ",", "but", "can't breathe", "rash", "stiff neck", "fever", "'"]
)
_text = st.one_of(st.text(max_size=80), st.lists(_words, max_size=12).map(" ".join))
_entity = st.fixed_dictionaries(
    {"type": st.sampled_from(["SYMPTOM", "DISEASE", "DRUG", "DURATION", "SEVERITY", "ANATOMY", "", "x"]), "text": _text},
    optional={
        "assertion": st.one_of(st.sampled_from(ASSERTIONS), st.text(max_size=10), st.none(), st.integers()),
        "attributes": st.dictionaries(st.sampled_from(["severity", "duration", "assertion"]), st.one_of(st.text(max_size=10), st.integers())),
        "severity": st.text(max_size=10),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(_text, max_size=4),
    entities=st.lists(_entity, max_size=4),
    filled=st.dictionaries(st.sampled_from(SLOTS), st.one_of(st.none(), _text)),
    asked=st.frozensets(st.sampled_from(SLOTS)),
    pending=st.one_of(st.none(), st.sampled_from(SLOTS)),
    urgency=st.one_of(st.none(), st.sampled_from(URGENCY_LEVELS)),
)
def test_decide_never_crashes(texts, entities, filled, asked, pending, urgency):
    decision = ENGINE.decide(TriageInput(tuple(texts), tuple(entities), filled, asked, pending, urgency))
    assert decision.urgency is None or decision.urgency in URGENCY_LEVELS
    if urgency is not None:
        assert URGENCY_LEVELS.index(decision.urgency) <= URGENCY_LEVELS.index(urgency)
    if decision.question is not None:
        assert decision.question.slot not in asked and decision.question.slot != pending
        assert decision.question.slot not in decision.filled_slots
        assert not decision.complete
    else:
        assert decision.complete and decision.summary
    for slot, value in filled.items():
        if value is not None:
            assert decision.filled_slots[slot] == value
    json.dumps(decision.to_dict())
