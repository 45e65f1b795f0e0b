"""The DDXPlus differential: estimates from the dev half only, posteriors, question choice, severity urgency."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from consult.triage.differential import DifferentialModel, patients_read, patients_split

DDXPLUS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "DDXPlus"
pytestmark = pytest.mark.skipif(not (DDXPLUS / "release_conditions.json").exists(),
                                reason=f"DDXPlus not found at {DDXPLUS} (shared data)")


@pytest.fixture(scope="module")
def model():
    return DifferentialModel.from_directory(DDXPLUS)


def test_the_split_is_fixed_and_about_half():
    splits = [patients_split(i) for i in range(2611)]
    assert splits == [patients_split(i) for i in range(2611)]
    assert 0.45 < splits.count("dev") / len(splits) < 0.55


def test_posterior_is_a_distribution_and_evidence_moves_it(model):
    empty = model.posterior({})
    assert empty.shape == (49,) and np.isclose(empty.sum(), 1.0)
    cough = model.posterior({"E_201": True, "E_91": True, "E_77": True})
    assert np.isclose(cough.sum(), 1.0)
    top = [r.pathology for r in model.ranked(cough, top=5)]
    assert any(p in top for p in ("Pneumonia", "Bronchitis", "Influenza", "URTI")), top


def test_the_chosen_question_has_the_largest_gain_and_skips_excluded(model):
    posterior = model.posterior({"E_66": True})
    evidence, gain = model.next_question(posterior, exclude=set())
    assert gain > 0
    again, _ = model.next_question(posterior, exclude={evidence.name})
    assert again.name != evidence.name


def test_severity_urgency_follows_the_cumulative_probability(model):
    posterior = np.zeros(49)
    posterior[model.pathologies.index("Anaphylaxis")] = 0.3  # severity 1
    posterior[model.pathologies.index("URTI")] = 0.7  # severity 5
    assert model.severity_urgency(posterior, (0.25, 0.3, 0.4, 0.5)) == "emergency_ambulance"
    assert model.severity_urgency(posterior, (0.35, 0.35, 0.4, 0.5)) == "self_care"


def test_a_dev_patient_is_recognised_from_its_full_evidence(model):
    dev = [p for p in patients_read(DDXPLUS) if patients_split(p.row) == "dev"][:200]
    hits = 0
    for patient in dev:
        observed = {e: True for e in patient.evidences if "_@_" not in e}
        posterior = model.posterior(observed, age=patient.age, sex=patient.sex)
        hits += model.ranked(posterior, top=1)[0].pathology == patient.pathology
    assert hits / len(dev) > 0.7


def test_a_weight_below_one_tempers_the_posterior(model):
    observed = {"E_201": True, "E_91": True, "E_77": True, "E_66": False, "E_53": False}
    plain = model.posterior(observed)
    tempered = model.posterior(observed, evidence_weight=0.7)
    assert np.isclose(tempered.sum(), 1.0)
    assert tempered.max() < plain.max()  # less confident after the same answers
    # With no evidence the weight changes nothing.
    assert np.allclose(model.posterior({}, evidence_weight=0.7), model.posterior({}))



@pytest.fixture(scope="module")
def grouped():
    from consult.triage import knowledge_load

    return DifferentialModel.from_directory(DDXPLUS, groups=knowledge_load().ddxplus_groups())


def test_a_grouped_finding_is_a_feature_estimated_from_any_of_its_values(grouped):
    # Chest pain is any of DDXPlus's chest sites of E_55: cardiac pathologies have it far more often than URTI.
    chest = grouped.evidence_index["chest_pain"]
    likelihood = dict(zip(grouped.pathologies, grouped.likelihood[:, chest]))
    assert likelihood["Possible NSTEMI / STEMI"] > 0.5 > 0.1 > likelihood["URTI"]
    with_pain = grouped.ranked(grouped.posterior({"chest_pain": True, "E_66": True}), top=5)
    without = grouped.ranked(grouped.posterior({"chest_pain": False, "E_66": True}), top=5)
    cardiac = {"Possible NSTEMI / STEMI", "Unstable angina", "Stable angina", "Pericarditis", "Pulmonary embolism"}
    assert len(cardiac & {r.pathology for r in with_pain}) > len(cardiac & {r.pathology for r in without})


def test_a_group_value_that_is_not_a_multiple_choice_value_is_refused():
    with pytest.raises(ValueError, match="multiple-choice"):
        DifferentialModel.from_directory(DDXPLUS, groups={"chest_pain": ["E_66_@_V_1"]})
    with pytest.raises(ValueError, match="multiple-choice"):
        DifferentialModel.from_directory(DDXPLUS, groups={"chest_pain": ["E_55_@_V_99999"]})


def test_every_ddxplus_evidence_the_knowledge_base_names_exists():
    import json

    from consult.triage import knowledge_load

    evidences = json.loads((DDXPLUS / "release_evidences.json").read_text(encoding="utf-8"))
    unknown = []
    for finding in knowledge_load().findings.values():
        for name in finding.ddxplus:
            base, _, value = name.partition("_@_")
            if base not in evidences or (value and value not in evidences[base]["possible-values"]):
                unknown.append(f"{finding.id}: {name}")
    assert not unknown


def test_only_pathologies_that_account_for_a_present_finding_are_counted(grouped):
    observed = {"E_97": True, "E_53": True, "E_66": False}  # a sore throat (and so "pain somewhere")
    counted = dict(zip(grouped.pathologies, grouped.explaining(observed, support=0.05)))
    assert counted["URTI"] and not counted["Sarcoidosis"] and not counted["Cluster headache"]
    assert grouped.explaining(observed, support=0.0).all() and grouped.explaining({}, support=0.05).all()
    # "Pain somewhere" is not specific: most pathologies have it, so alone it discounts nothing.
    assert grouped.explaining({"E_53": True}, support=0.05).all()
    # An unrelated second finding (a runny nose) does not discount what explains the first (chest pain).
    both = dict(zip(grouped.pathologies, grouped.explaining({"chest_pain": True, "E_181": True}, support=0.05)))
    assert both["Possible NSTEMI / STEMI"] and both["URTI"]
    # Severe pathologies that do not account for the sore throat do not raise the level.
    posterior = np.zeros(49)
    posterior[grouped.pathologies.index("Spontaneous pneumothorax")] = 0.6  # severity 2, no sore throat
    posterior[grouped.pathologies.index("URTI")] = 0.4
    thresholds = (0.2, 0.25, 0.45, 0.5)
    assert grouped.severity_urgency(posterior, thresholds) == "emergency"
    assert grouped.severity_urgency(posterior, thresholds, grouped.explaining(observed, support=0.05)) == "self_care"


def test_a_sore_throat_denying_everything_is_not_sent_to_hospital():
    # A new patient's trial: "I've got a sore throat", then "no" to every question, ended at "go to an emergency
    # department" after 25 questions: each "no" moved the posterior to severe pathologies that have no sore throat.
    from consult.triage import TriageEngine, TriageInput, TriageSettings, Turn, knowledge_load

    knowledge = knowledge_load()
    engine = TriageEngine(knowledge, settings=TriageSettings(), differential=DifferentialModel.from_directory(
        DDXPLUS, groups=knowledge.ddxplus_groups()))
    turns, asked = [Turn("I've got a sore throat")], []
    decision = engine.decide(TriageInput(turns=tuple(turns)))
    while not decision.concluded and len(asked) < 40:
        asked.append(decision.question.id)
        turns.append(Turn("30, male" if decision.question.id == "general:demographics" else "no",
                          answered=decision.question.id))
        decision = engine.decide(TriageInput(turns=tuple(turns), asked=tuple(asked)))
    assert decision.concluded and decision.urgency in ("self_care", "consultation"), decision.reasons


def test_a_follow_up_is_not_asked_after_its_parent_was_denied_nor_an_adult_habit_of_a_child(grouped):
    # The patient trial: "Do you have a rash?" no -> "Is the lesion larger than 1 cm?"; "Do you have a headache?"
    # no -> "Is the pain at the front or side of your head?"; a parent asked about their 2-year-old's drug use.
    assert grouped.parent["E_135"] == "E_129" and grouped.parent["headache_front_or_side"] == "headache"
    assert grouped.parent["chest_pain"] == "E_53"
    assert {"E_135", "E_131"} <= grouped.unaskable({"E_129": False}, age=30)
    assert "headache_front_or_side" in grouped.unaskable({"headache": False}, age=30)
    child, adult = grouped.unaskable({}, age=2), grouped.unaskable({}, age=30)
    adult_habits = {e.name for e in grouped.evidences if e.is_antecedent} & child
    assert adult_habits and not adult and "E_4" not in child  # "has anyone in the family had croup?" stays
