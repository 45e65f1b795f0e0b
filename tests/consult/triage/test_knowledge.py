"""The knowledge base validates (ids, sources, codes) and every red flag fires on what it names, and only then."""
from __future__ import annotations

import json
import shutil

import pytest

from consult.triage import TriageEngine, TriageInput, Turn, knowledge_load, knowledge_read
from consult.triage import evidence as ev
from consult.triage.knowledge import KNOWLEDGE_DIR, knowledge_codes_check, sources_cited
from consult.vocabulary import URGENCY_LEVELS

KNOWLEDGE = knowledge_load()
COVERED_AREAS = (
    "headache", "chest", "breath", "abdominal", "fever", "vomit", "back", "rash", "urin", "dizz", "limb",
    "eye", "ear", "throat", "mental", "pregnan", "injur",
)


def test_the_shipped_knowledge_base_validates_and_every_code_exists():
    assert KNOWLEDGE.red_flags and KNOWLEDGE.complaints and KNOWLEDGE.findings
    assert knowledge_codes_check(KNOWLEDGE) == []
    assert {s.id for s in sources_cited(KNOWLEDGE)} == {s.id for s in KNOWLEDGE.sources.values()}, "unused sources"


def test_the_complaints_cover_the_presentations_a_triage_service_meets():
    text = " ".join(f"{c.id} {c.label}".lower() for c in KNOWLEDGE.complaints)
    missing = [area for area in COVERED_AREAS if area not in text]
    assert not missing, missing
    assert any(c.id == "other" for c in KNOWLEDGE.complaints), "a fallback protocol for unlisted complaints"


def test_every_urgency_level_is_reachable():
    levels = {r.urgency for r in KNOWLEDGE.red_flags} | {c.baseline_urgency for c in KNOWLEDGE.complaints}
    assert levels == set(URGENCY_LEVELS)


@pytest.mark.parametrize("finding", list(KNOWLEDGE.findings.values()), ids=lambda f: f.id)
def test_every_synonym_is_found_in_a_sentence(finding):
    matcher = ev.FindingMatcher.build({finding.id: finding})
    for synonym in finding.synonyms:
        sentence = f"well, {synonym.replace(' ... ', ' ')} since monday"
        assert any(fid == finding.id for fid, _, _ in matcher.find(ev.text_normalise(sentence))), synonym


def _conversation_for(rule, *, drop: str | None = None) -> ev.Conversation:
    conversation = ev.Conversation(age=30.0, sex="male", severity=5)
    wanted = list(rule.when.all) + list(rule.when.any[:1])
    for finding_id in wanted:
        if finding_id != drop:
            conversation.findings[finding_id] = ev.FindingState("present", "message", finding_id, 0)
    if rule.when.age_min is not None:
        conversation.age = rule.when.age_min
    if rule.when.age_max is not None:
        conversation.age = rule.when.age_max
    if rule.when.sex:
        conversation.sex = rule.when.sex
    if rule.when.severity_min is not None:
        conversation.severity = rule.when.severity_min
    return conversation


ENGINE = TriageEngine(KNOWLEDGE)


@pytest.mark.parametrize("rule", KNOWLEDGE.red_flags, ids=lambda r: r.id)
def test_each_red_flag_fires_on_its_findings_and_not_without_them(rule):
    fired = {r.rule_id for r in ENGINE._red_flags(_conversation_for(rule))}
    assert rule.id in fired
    for required in rule.when.all or rule.when.any[:1]:
        if rule.when.any and required in rule.when.any and len(rule.when.any) > 1 and required not in rule.when.all:
            continue
        conversation = _conversation_for(rule, drop=required)
        assert rule.id not in {r.rule_id for r in ENGINE._red_flags(conversation)}, required
    absent = _conversation_for(rule)
    for state in absent.findings.values():
        state.assertion = "absent"
    assert rule.id not in {r.rule_id for r in ENGINE._red_flags(absent)}


@pytest.mark.parametrize("rule", [r for r in KNOWLEDGE.red_flags if r.when.age_max is not None], ids=lambda r: r.id)
def test_age_bounded_red_flags_respect_the_age(rule):
    conversation = _conversation_for(rule)
    conversation.age = rule.when.age_max + 5
    assert rule.id not in {r.rule_id for r in ENGINE._red_flags(conversation)}


@pytest.mark.parametrize("rule", KNOWLEDGE.red_flags, ids=lambda r: r.id)
def test_each_red_flag_fires_from_the_patients_words(rule):
    """The first synonym of each finding the rule needs, written as one message, fires the rule (no model:
    findings from the words alone)."""
    wanted = list(rule.when.all) + list(rule.when.any[:1])
    text = ". ".join(f"I have {KNOWLEDGE.findings[f].synonyms[0].replace(' ... ', ' ')}" for f in wanted)
    if rule.when.age_max is not None or rule.when.age_min is not None:
        age = rule.when.age_max if rule.when.age_max is not None else rule.when.age_min
        text += f". I'm {round(age * 52)} weeks old" if age < 1 else f". I'm {age:g} years old"
    if rule.when.sex:
        text += ". I'm a woman" if rule.when.sex == "female" else ". I'm a man"
    if rule.when.severity_min is not None:
        text += f". It's {rule.when.severity_min}/10"
    decision = ENGINE.decide(TriageInput(turns=(Turn(text),)))
    assert rule.id in decision.red_flags, (text, decision.record["findings"])


def _copy(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("red_flags.json", lambda d: d["red_flags"][0]["when"].update({"all": ["no_such_finding"]}), "unknown finding"),
        ("red_flags.json", lambda d: d["red_flags"][0].update({"urgency": "soon"}), "unknown urgency"),
        ("red_flags.json", lambda d: d["red_flags"][0].update({"source": "nowhere"}), "unknown source"),
        ("red_flags.json", lambda d: d["red_flags"].append(dict(d["red_flags"][0])), "duplicate id"),
        ("findings.json", lambda d: d["findings"][0].update({"synonyms": ["Capital"]}), "lowercase"),
        ("findings.json", lambda d: d["findings"][0].update({"extra": 1}), "unknown key"),
        ("complaints.json", lambda d: d["complaints"][0].update({"questions": ["nope"]}), "unknown finding"),
        ("complaints.json", lambda d: d["complaints"][0].update({"differential": "no"}), "true or false"),
        ("sources.json", lambda d: d["sources"][0].update({"url": "http://example.org"}), "https"),
    ],
)
def test_a_broken_knowledge_base_is_refused_naming_the_entry(tmp_path, file, edit, message):
    directory = _copy(tmp_path)
    data = json.loads((directory / file).read_text())
    edit(data)
    (directory / file).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as error:
        knowledge_read(directory)
    assert file in str(error.value)


def test_every_screening_question_id_fits_where_the_interview_stores_it():
    """A screening list's id names its findings ("screen:a+b+c+d"); TriageEvent.rule_id stores it (PostgreSQL
    enforces the length)."""
    from consult.models import TriageEvent
    from consult.triage import TriageSettings

    size = TriageSettings().screening_size
    limit = TriageEvent._meta.get_field("rule_id").max_length
    for complaint in KNOWLEDGE.complaints:
        longest = sorted(complaint.questions, key=len, reverse=True)[:size]
        assert len("screen:" + "+".join(longest)) <= limit, complaint.id
