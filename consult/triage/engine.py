"""The consultation interview: presenting complaint -> its red-flag questions -> questions that separate the
likely pathologies -> general questions -> a disposition. Pure Python (never imports Django).

Every call rebuilds the evidence from the whole conversation (`Turn`s: each patient message, its extracted
mentions and the question it answered), so that a later message can add, correct or negate a finding.

Safety rules (issue 11):
- no urgency until there is a complaint; the interview keeps asking for one;
- a red flag that says "act now" (call an ambulance, go to an emergency department) concludes at once;
- never self-care until the complaint's red-flag questions are answered or declined; a declined ("not sure")
  red-flag question counts as present for the red flag, and any declined red-flag question keeps the
  disposition at "see a doctor" or above;
- the urgency never falls below what an earlier turn of the same conversation reached (`previous_urgency`);
- every level lists the rules and evidence behind it, each rule once.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consult.triage import evidence as ev
from consult.triage import wording
from consult.triage.ddxplus_questions import ddxplus_question_text
from consult.triage.differential import DifferentialModel, Ranked
from consult.triage.similarity import Encode, FindingSimilarity
from consult.triage.knowledge import Complaint, KnowledgeBase, RedFlag
from consult.vocabulary import URGENCY_ACT_NOW, URGENCY_LABELS, urgency_max, urgency_rank

COMPLAINT_QUESTION = (
    "Please tell me, in your own words, what is bothering you today: what you feel, where, and since when."
)
COMPLAINT_AGAIN = (
    "I'm here to help. I can only give advice once I know what the problem is: what symptoms do you have?"
)
PAIN_SITE_QUESTION = "Where exactly is the pain?"
# The assertion a yes / no / "not sure" answer gives the finding asked about.
_ANSWER_ASSERTION = {"yes": "present", "no": "absent", "unsure": "unsure"}
# The general questions, in this order, after the complaint's own questions.
# "anything_else" closes every interview: a patient answers what is asked, and a second symptom nobody asked about
# (palpitations beside a headache) changes the complaint, its red flags and the differential.
GENERAL_ORDER = ("duration", "severity", "demographics", "pregnancy", "history", "anything_else")
ANYTHING_ELSE_AGAIN = "What else have you noticed? Tell me in your own words."
# The general questions that a yes or no does not answer, and how they are asked again after one.
UNCLEAR_AGAIN: Mapping[str, str] = {
    "duration": "Sorry, I need a time here: when did it start? For example \"this morning\", \"3 days ago\" or "
                "\"for about a month\". If you don't know, say \"not sure\".",
    "severity": "Sorry, I need a number here: from 0 (no pain or discomfort) to 10 (the worst you can imagine), "
                "how bad is it at its worst? If you can't say, answer \"not sure\".",
}
# Messages that carry no clinical content: the interview keeps asking for the complaint.
_SMALL_TALK = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening)|is anyone there|anyone there|are you there|"
    r"hello\?|thanks|thank you|thx|ok|okay|k|cool|great|bye|goodbye|see you|test|testing|yes|no|what|help|"
    r"who are you|\?+)[\s!?.,]*$"
)
SUMMARY_DENIED_SHOWN = 3  # denied findings named in the patient's summary; the rest are counted
# An answer to a screening list that names some of its findings as the only ones.
_ONLY_THOSE = re.compile(r"\b(?:none of the others?|not the others?|no(?:ne)? others?|nothing else|only|just)\b")
URGENCY_ADVICE: Mapping[str, str] = {
    "emergency_ambulance": "Call 999 (or your local emergency number) for an ambulance now.",
    "emergency": "Go to the nearest emergency department now. If you cannot get there safely, call 999.",
    "consultation_24": "Please get medical help today: ask your GP practice for an urgent appointment, or call NHS 111. "
                       "If it gets worse, seek urgent care.",
    "consultation": "Please book an appointment with your doctor in the next few days. "
                    "If it gets worse or new symptoms appear, seek care sooner.",
    "self_care": "This can usually be looked after at home: rest, fluids and a pharmacist's advice. "
                 "See a doctor if it gets worse or does not improve within a few days.",
}


@dataclass(frozen=True)
class TriageSettings:
    """Interview limits and the differential's urgency thresholds, chosen on the DDXPlus dev half
    (bench/ddxplus_triage.py)."""

    # Red-flag questions: asked in screening lists of this many findings ("Do you have any of these: ...?"; 1: one
    # by one); skipped when no red flag they belong to can raise the level already reached.
    screening_size: int = 4
    skip_settled_red_flags: bool = True
    # The chief complaint's red-flag questions (None: all of them; a cap applies only while the disposition would
    # not be self-care) and each further complaint's.
    complaint_questions: int | None = None
    secondary_complaint_questions: int = 3
    # DDXPlus questions: at least `differential_min_questions` before the stop probability may end them, at most
    # `differential_questions`; a question must gain at least `differential_min_gain` bits.
    differential_min_questions: int = 5
    differential_questions: int = 18
    differential_stop_probability: float = 0.95  # stop once the top pathology reaches this
    differential_min_gain: float = 0.02
    evidence_weight: float = 0.7  # tempers the differential's naive Bayes (DifferentialModel.posterior)
    severity_thresholds: tuple[float, float, float, float] = (0.2, 0.25, 0.45, 0.5)  # P(severity <= k), k = 1..4
    # Only pathologies under which some present, specific finding has at least this probability count towards the
    # level (0: all): after many "no" answers the posterior drifts to pathologies that explain nothing the patient has.
    differential_support: float = 0.05
    # A clause names a finding by meaning when its embedding's cosine with one of the finding's descriptions
    # reaches this (None: synonyms and codes only); chosen on the dev half of bench/data/finding_phrases.tsv.
    similarity_threshold: float | None = 0.7


@dataclass(frozen=True)
class Turn:
    """One patient message: its text, the extractor's mentions ({"start","end","type","text","attributes"})
    and the id of the question it answered (None for the first message)."""

    text: str
    entities: tuple[Mapping[str, Any], ...] = ()
    answered: str | None = None


@dataclass(frozen=True)
class TriageInput:
    turns: tuple[Turn, ...]  # oldest first
    asked: tuple[str, ...] = ()  # question ids asked so far, in order (repeats included)
    previous_urgency: str | None = None
    # Age (years) and sex ("female" | "male") as a clinician recorded them; they take precedence over the
    # conversation's answers.
    age: float | None = None
    sex: str | None = None


@dataclass(frozen=True)
class Question:
    id: str  # "complaint" | "finding:<id>" | "screen:<id>+<id>..." | "ddx:<E_xx>" | "general:<id>" | "site:pain"
    text: str


@dataclass(frozen=True)
class Reason:
    rule_id: str
    description: str
    urgency: str | None
    evidence: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.description} (evidence: {', '.join(self.evidence)})" if self.evidence else self.description


@dataclass(frozen=True)
class TriageDecision:
    urgency: str | None
    question: Question | None
    concluded: bool
    advice: str | None
    reasons: tuple[Reason, ...]
    red_flags: tuple[str, ...]
    complaints: tuple[str, ...]  # complaint ids, chief complaint first
    differential: tuple[Ranked, ...]
    record: dict[str, Any]  # findings and the patient's fields, JSON-ready
    summary: str | None  # for the patient, once concluded

    def to_dict(self) -> dict[str, Any]:
        return {
            "urgency": self.urgency,
            "question": None if self.question is None else {"id": self.question.id, "text": self.question.text},
            "concluded": self.concluded,
            "advice": self.advice,
            "reasons": [
                {"rule_id": r.rule_id, "reason": r.describe(), "urgency": r.urgency} for r in self.reasons
            ],
            "red_flags": list(self.red_flags),
            "complaints": list(self.complaints),
            "differential": [
                {"pathology": r.pathology, "icd10": r.icd10, "severity": r.severity, "probability": round(r.probability, 4)}
                for r in self.differential
            ],
            "record": self.record,
            "summary": self.summary,
        }


@dataclass
class _Interview:
    """Working state of one decide() call."""

    conversation: ev.Conversation
    complaints: list[Complaint] = field(default_factory=list)
    mentioned_symptoms: list[str] = field(default_factory=list)  # extractor SYMPTOM/DISEASE words, current
    ddx_answers: dict[str, str] = field(default_factory=dict)  # E_xx -> "yes" | "no" | "unsure"
    pain_site_known: bool = False
    more_to_tell: bool = False  # "anything else?" was answered "yes" without saying what


class TriageEngine:
    """Runs the interview over a knowledge base and, when given, a DDXPlus differential model."""

    def __init__(self, knowledge: KnowledgeBase, *, differential: DifferentialModel | None = None,
                 assertion_of: ev.AssertionOf | None = None, settings: TriageSettings = TriageSettings(),
                 encode: Encode | None = None) -> None:
        """`encode` (texts -> L2-normalised sentence embeddings [n, H]) lets the interview hear findings by
        meaning (`FindingSimilarity`); without it, by the knowledge base's synonyms and codes only."""
        self.knowledge = knowledge
        self.similarity = None if encode is None or settings.similarity_threshold is None else FindingSimilarity(
            knowledge.findings, encode, threshold=settings.similarity_threshold)
        self.differential = differential
        self.settings = settings
        self.assertion_of = assertion_of or _assertion_none
        self.matcher = ev.FindingMatcher.build(knowledge.findings)
        self.codes: dict[tuple[str, str], set[str]] = {}
        for finding in knowledge.findings.values():
            for system, codes in finding.codes.items():
                for code in codes:
                    self.codes.setdefault((system, code), set()).add(finding.id)
        self.finding_for_evidence = knowledge.finding_for_ddxplus()
        self._fallback = next((c for c in knowledge.complaints if c.id == "other"), None)
        self._findings_memo: dict[tuple, tuple[tuple[str, str, str], ...]] = {}
        # The most urgent level each finding can lead to through a red flag: a red-flag question whose answer
        # cannot raise the disposition any more is not worth the patient's time.
        self.finding_stake: dict[str, str | None] = {}
        for rule in knowledge.red_flags:
            for finding_id in rule.when.finding_ids:
                self.finding_stake[finding_id] = urgency_max(self.finding_stake.get(finding_id), rule.urgency)

    @property
    def rules(self) -> list[RedFlag]:
        return list(self.knowledge.red_flags)

    # ------------------------------------------------------------------- evidence

    def _read(self, inp: TriageInput) -> _Interview:
        conversation = ev.Conversation()
        interview = _Interview(conversation)
        finding_words: set[str] = set()  # the patient's words each finding was read from
        for index, turn in enumerate(inp.turns):
            text = turn.text or ""
            entities = [e for e in turn.entities if _entity_ok(e, text)]
            answered = turn.answered or ""
            # An answer to a general question ("a few days", "28, female") names no finding by its meaning.
            by_meaning = not answered.startswith("general:") or answered == "general:anything_else"
            stated = list(self._message_findings(text, entities, by_meaning=by_meaning))
            if answered == "site:pain":
                framed = f"pain in {text}"
                offset = len("pain in ")
                for finding_id, assertion, words in ev.message_findings(
                    text=framed, entities=(), matcher=self.matcher, codes={}, assertion_of=self.assertion_of
                ):
                    if finding_id != "pain":
                        stated.append((finding_id, assertion, words[offset:] if words.startswith("pain in ") else words))
                interview.pain_site_known = True
            stated_ids = {finding_id for finding_id, _, _ in stated}
            for finding_id, assertion, words in stated:
                ev.finding_update(conversation, finding_id, ev.FindingState(assertion, "message", words, index))
                finding_words.add(words.lower())
            self._answer(interview, answered, text, index, stated_ids)
            self._fields(conversation, text, entities, answered)
            if answered == "general:anything_else":
                interview.more_to_tell = not stated_ids and not entities and ev.answer_read(text) in ("yes", "unsure")
            for entity in entities:
                if entity.get("type") in ("SYMPTOM", "DISEASE") and ev.entity_assertion(entity) in (None, "present", "possible"):
                    interview.mentioned_symptoms.append(entity["text"])
        if inp.age is not None:
            conversation.age = inp.age
        if inp.sex in ("female", "male"):
            conversation.sex = inp.sex
        conversation.medications = list(dict.fromkeys(ev.medications_read(
            [e for turn in inp.turns for e in turn.entities]))) or conversation.medications
        conversation.conditions = list(dict.fromkeys(conversation.conditions + ev.conditions_read(
            [e for turn in inp.turns for e in turn.entities], finding_words)))
        # Complaints in the order their first finding was stated; history, family and hypotheticals don't count.
        first_seen: dict[str, int] = {}
        for complaint in self.knowledge.complaints:
            turns = [conversation.findings[f].message_index for f in complaint.findings
                     if conversation.findings.get(f) and conversation.findings[f].assertion in ("present", "possible")]
            if turns:
                first_seen[complaint.id] = min(turns)
        interview.complaints = sorted(
            (c for c in self.knowledge.complaints if c.id in first_seen), key=lambda c: first_seen[c.id]
        )
        if conversation.pregnant and "pregnant" in self.knowledge.findings and not conversation.present("pregnant"):
            conversation.findings["pregnant"] = ev.FindingState("present", "answer", "pregnant", len(inp.turns) - 1)
        # Something to work on: a current finding or mention, or a patient who answered the complaint question
        # twice with words the knowledge base does not list (a past normal result alone is not a complaint).
        described = interview.mentioned_symptoms or any(
            s.assertion in ("present", "possible") for s in conversation.findings.values()) or sum(
            1 for t in inp.turns if t.answered == "complaint" and not _SMALL_TALK.match(ev.text_normalise(t.text).strip())
        ) >= 2
        if not interview.complaints and described and self._fallback is not None:
            # The patient described something the knowledge base does not list: general red-flag questions.
            interview.complaints = [self._fallback]
        return interview

    def _answer(self, interview: _Interview, answered: str, text: str, index: int, stated: set[str]) -> None:
        kind, _, key = answered.partition(":")
        if kind not in ("finding", "ddx", "screen"):
            return
        answer = ev.answer_read(text)
        if kind == "screen":
            # "No" rules out each finding of the list the message does not state itself, and so does a message
            # that names some of them as the only ones ("yes, bright light hurts my eyes, but none of the others");
            # any other answer leaves them open, to be asked one by one.
            listed = key.split("+")
            only_those = bool(stated & set(listed)) and _ONLY_THOSE.search(ev.text_normalise(text)) is not None
            if answer == "no" or only_those:
                for finding_id in listed:
                    if finding_id in self.knowledge.findings and finding_id not in stated:
                        ev.finding_update(interview.conversation, finding_id,
                                          ev.FindingState("absent", "answer", text.strip()[:80], index))
            return
        if kind == "finding":
            if key in stated or answer is None:
                return  # the message states the finding itself, with its own assertion
            assertion = _ANSWER_ASSERTION[answer]
            ev.finding_update(interview.conversation, key, ev.FindingState(assertion, "answer", text.strip()[:80], index))
            return
        finding_id = self.finding_for_evidence.get(key)
        if finding_id is not None and finding_id in stated:
            return
        if answer is not None:
            interview.ddx_answers[key] = answer
            if finding_id is not None:
                assertion = _ANSWER_ASSERTION[answer]
                ev.finding_update(interview.conversation, finding_id,
                                   ev.FindingState(assertion, "answer", text.strip()[:80], index))

    def _fields(self, conversation: ev.Conversation, text: str, entities: Sequence[Mapping], answered: str) -> None:
        question = answered.removeprefix("general:") if answered.startswith("general:") else None
        answer = ev.answer_read(text) if question else None
        if (age := ev.age_read(text, answering=question == "demographics")) is not None:
            conversation.age = age
        if (sex := ev.sex_read(text, answering=question == "demographics")) is not None:
            conversation.sex = sex
        pregnant = ev.pregnancy_read(text)
        if question == "pregnancy" and pregnant is None and answer in ("yes", "no"):
            pregnant = answer == "yes"
        if pregnant is not None:
            conversation.pregnant = pregnant
            if pregnant:
                conversation.sex = "female"
        if (duration := ev.duration_read(text)) is not None:
            conversation.duration = conversation.duration or duration
        elif question == "duration" and answer is None and text.strip():
            conversation.duration = text.strip()[:80]
        if (severity := ev.severity_read(text, answering=question == "severity")) is not None:
            conversation.severity = severity if conversation.severity is None else max(conversation.severity, severity)
        conversation.habits = list(dict.fromkeys(conversation.habits + ev.habits_read(text)))
        conversation.allergies += ev.allergies_read(text)
        if question in UNCLEAR_AGAIN and answer == "no" and (
                conversation.duration if question == "duration" else conversation.severity) is None:
            conversation.unclear.add(question)
        elif question in ("duration", "severity", "demographics", "pregnancy", "history") and answer in ("no", "unsure"):
            conversation.declined.add(question)
        elif question == "history" and answer is None and not entities and not conversation.allergies:
            conversation.conditions.append(text.strip()[:120])  # in the patient's words, for the clinician

    def _message_findings(self, text: str, entities: Sequence[Mapping[str, Any]], *,
                          by_meaning: bool = True) -> tuple[tuple[str, str, str], ...]:
        """ev.message_findings, remembered per message: every decision re-reads the whole conversation.
        `by_meaning`: also the findings its clauses mean in other words (`FindingSimilarity`)."""
        key = (text, by_meaning, tuple(
            (e["start"], e["end"], e.get("type"), ev.entity_assertion(e),
             tuple((c.get("system"), c.get("code")) for c in (e.get("attributes") or {}).get("codes") or ()))
            for e in entities))
        found = self._findings_memo.get(key)
        if found is None:
            if len(self._findings_memo) > 10_000:
                self._findings_memo.clear()
            similar = self.similarity.find if self.similarity is not None and by_meaning else None
            found = tuple(ev.message_findings(text=text, entities=entities, matcher=self.matcher, codes=self.codes,
                                              assertion_of=self.assertion_of, similar=similar))
            self._findings_memo[key] = found
        return found

    # ------------------------------------------------------------------- rules

    def _red_flags(self, conversation: ev.Conversation) -> list[Reason]:
        fired = []
        for rule in self.knowledge.red_flags:
            when = rule.when
            if not when.holds(conversation.present, age=conversation.age, sex=conversation.sex,
                              severity=conversation.severity):
                continue
            words = [
                f"{self.knowledge.findings[f].label}: "
                f"{'not sure' if conversation.findings[f].assertion == 'unsure' else repr(conversation.findings[f].words)}"
                for f in when.finding_ids if conversation.present(f)
            ]
            if when.severity_min is not None:
                words.append(f"severity {conversation.severity}/10")
            if when.age_max is not None or when.age_min is not None:
                words.append(f"age {_age_words(conversation.age)}")
            fired.append(Reason(rule.id, rule.description, rule.urgency, tuple(words)))
        return fired

    def _ddx_observed(self, interview: _Interview) -> dict[str, bool]:
        observed: dict[str, bool] = {}
        for finding in self.knowledge.findings.values():
            state = interview.conversation.findings.get(finding.id)
            if state is None or state.assertion == "unsure":
                continue
            for name in finding.ddxplus:
                # A finding defined by a group of values is the differential's feature of the finding's own id.
                observed[finding.id if "_@_" in name else name] = state.assertion in ("present", "possible", "historical")
        for name, answer in interview.ddx_answers.items():
            if answer != "unsure":
                observed[name] = answer == "yes"
        return observed

    def _differential_in_scope(self, interview: _Interview) -> bool:
        """DDXPlus's differential applies when a current finding is one of its evidences and the chief complaint
        is one DDXPlus covers (`Complaint.differential`), or the complaint is one the knowledge base does not list.
        Where DDXPlus lacks the common causes (headache: no migraine), its posterior rests on side findings
        (nausea) and named anaphylaxis and heart attacks for a migraine."""
        if self.differential is None or not interview.complaints:
            return False
        if interview.complaints[0] is self._fallback:
            return True
        if not interview.complaints[0].differential:
            return False
        return any(self.knowledge.findings[f].ddxplus for f in interview.conversation.findings
                   if interview.conversation.present(f))

    # ------------------------------------------------------------------- questions

    def _next_question(self, inp: TriageInput, interview: _Interview, posterior, observed: Mapping[str, bool],
                       provisional: str | None, floor: str | None) -> Question | None:
        asked = list(inp.asked)
        conversation = interview.conversation
        screened = {f for q in asked if q.startswith("screen:") for f in q.removeprefix("screen:").split("+")}
        for rank, complaint in enumerate(interview.complaints):
            if rank == 0:
                # Past the cap only while the disposition would be self-care: never self-care with red-flag
                # questions unasked.
                limit = None if provisional == "self_care" else self.settings.complaint_questions
            else:
                limit = self.settings.secondary_complaint_questions
            pending = [f for f in complaint.questions[:limit]
                       if not conversation.known(f) and f"finding:{f}" not in asked and self._can_raise(f, floor)]
            question = self._red_flag_question(pending, screened)
            if question is not None:
                return question
            if complaint is self._fallback and conversation.present("pain") and not interview.pain_site_known and (
                    "site:pain" not in asked):
                return Question("site:pain", PAIN_SITE_QUESTION)
            if rank == 0 and (conversation.age is None or conversation.sex is None) and (
                    "general:demographics" not in asked):
                # Age and sex come early: red flags (a baby's fever) and the differential depend on them.
                return Question("general:demographics", self.knowledge.general_questions["demographics"])
        if posterior is not None:
            question = self._differential_question(inp, interview, posterior, observed)
            if question is not None:
                return question
        for general in GENERAL_ORDER:
            # An answer that answered something else gets the question once more (issue 11: the medicines
            # question was never asked again); so does a bare "yes" to "anything else?".
            # A bare "no" to a question about when or how much gets it once more, in other words.
            unclear = general in conversation.unclear
            again = general in ("demographics", "history") or unclear or (
                general == "anything_else" and interview.more_to_tell)
            if self._general_needed(general, interview) and asked.count(f"general:{general}") < (2 if again else 1):
                if general == "anything_else" and interview.more_to_tell:
                    return Question("general:anything_else", ANYTHING_ELSE_AGAIN)
                if unclear:
                    return Question(f"general:{general}", UNCLEAR_AGAIN[general])
                return Question(f"general:{general}", self.knowledge.general_questions[general])
        return None

    def _red_flag_question(self, pending: Sequence[str], screened: set[str]) -> Question | None:
        """The next red-flag question over `pending` finding ids (in the protocol's order): a finding a screening
        question could not rule out (answered yes, "not sure" or otherwise) is asked on its own; the others are
        asked together, up to `screening_size` at a time ("Do you have any of these: ...?"), as NHS 111 online
        does: one "no" rules out the whole list, a "yes" leads to each of them."""
        if not pending:
            return None
        findings = self.knowledge.findings
        follow_up = next((f for f in pending if f in screened), None)
        fresh = [f for f in pending if f not in screened][: self.settings.screening_size]
        if follow_up is not None or len(fresh) < 2:
            finding_id = follow_up or fresh[0]
            return Question(f"finding:{finding_id}", findings[finding_id].question)
        labels = [findings[f].label for f in fresh]
        text = "Do you have any of these?\n" + "\n".join(f"• {label}" for label in labels) + "\nPlease answer yes or no."
        return Question(f"screen:{'+'.join(fresh)}", text)

    def _can_raise(self, finding_id: str, floor: str | None) -> bool:
        """Whether a red flag built on `finding_id` could make the disposition more urgent than `floor`
        (findings in no red flag are asked for the differential)."""
        if not self.settings.skip_settled_red_flags or finding_id not in self.finding_stake or floor is None:
            return True
        return urgency_rank(self.finding_stake[finding_id]) < urgency_rank(floor)

    def _general_needed(self, general: str, interview: _Interview) -> bool:
        conversation = interview.conversation
        if general in conversation.declined:
            return False
        if general == "duration":
            return conversation.duration is None
        if general == "severity":
            return conversation.severity is None
        if general == "demographics":
            return conversation.age is None or conversation.sex is None
        if general == "pregnancy":
            return (conversation.pregnant is None and conversation.sex == "female"
                    and (conversation.age is None or 12 <= conversation.age <= 55)
                    and any(c.pregnancy_relevant for c in interview.complaints))
        if general == "anything_else":
            return True  # asked once (`_next_question`)
        return not (conversation.medications or conversation.conditions or conversation.allergies)  # history

    def _differential_question(self, inp: TriageInput, interview: _Interview, posterior,
                               observed: Mapping[str, bool]) -> Question | None:
        model = self.differential
        assert model is not None
        asked_ddx = [q for q in inp.asked if q.startswith("ddx:")]
        if len(asked_ddx) >= self.settings.differential_questions:
            return None
        settled = float(posterior.max()) >= self.settings.differential_stop_probability and (
            len(asked_ddx) >= self.settings.differential_min_questions)
        if settled:
            return None
        exclude = {q.removeprefix("ddx:") for q in asked_ddx} | set(observed)
        exclude |= {e for f in interview.conversation.findings for e in self.knowledge.findings[f].ddxplus}
        exclude |= set(interview.conversation.findings)  # the features of grouped findings (`ddxplus_groups`)
        exclude |= model.unaskable(observed, age=interview.conversation.age)
        found = model.next_question(posterior, exclude=exclude)
        if found is None or found[1] < self.settings.differential_min_gain:
            return None
        evidence, _ = found
        finding_id = self.finding_for_evidence.get(evidence.name)
        # DDXPlus's own question in plain English (knowledge/ddxplus_questions.json) where it has clinicians' words.
        text = self.knowledge.findings[finding_id].question if finding_id else ddxplus_question_text(
            evidence.name, evidence.question)
        return Question(f"ddx:{evidence.name}", text)

    # ------------------------------------------------------------------- decide

    def decide(self, inp: TriageInput) -> TriageDecision:
        """The next question or the disposition for the conversation so far. Raises ValueError for an
        unknown `previous_urgency`."""
        if inp.previous_urgency is not None and inp.previous_urgency not in URGENCY_ADVICE:
            raise ValueError(f"unknown urgency {inp.previous_urgency!r}")
        interview = self._read(inp)
        conversation = interview.conversation
        record = self._record(interview)

        red_flags = self._red_flags(conversation)
        if not interview.complaints and red_flags and self._fallback is not None:
            interview.complaints = [self._fallback]  # a red flag is a complaint, whatever words stated it
        if not interview.complaints:
            # No advice level without a complaint: keep asking for it (issue 11, conversation 4).
            text = COMPLAINT_AGAIN if "complaint" in inp.asked else COMPLAINT_QUESTION
            reasons = ()
            urgency = inp.previous_urgency
            if urgency is not None:
                reasons = (Reason("kept_earlier_level", "Kept: an earlier turn reached this level", urgency),)
            return TriageDecision(urgency, Question("complaint", text), False, None, reasons, (), (), (), record, None)

        reasons: list[Reason] = list(red_flags)
        act_now = urgency_max(*(r.urgency for r in red_flags))
        posterior = None
        differential: tuple[Ranked, ...] = ()
        observed = self._ddx_observed(interview)
        if self.differential is not None and self._differential_in_scope(interview):
            posterior = self.differential.posterior(observed, age=conversation.age, sex=conversation.sex,
                                                    evidence_weight=self.settings.evidence_weight)
            differential = tuple(self.differential.ranked(posterior))
        differential_level = self._differential_level(posterior, observed)

        # What no later answer can lower (fired red flags, the complaints' usual level, an earlier turn's level),
        # and the level the conclusion would give now (the differential's part may still fall).
        floor = urgency_max(act_now, inp.previous_urgency, *(c.baseline_urgency for c in interview.complaints))
        provisional = urgency_max(floor, differential_level)
        question = None
        if act_now not in URGENCY_ACT_NOW:
            question = self._next_question(inp, interview, posterior, observed, provisional, floor)
            if question is not None and (person := wording.person_read(inp.turns)) is not None:
                # A parent or carer writing about someone else: the question asks about that person.
                question = Question(question.id, wording.question_for(question.text, person))

        if question is not None:
            urgency = urgency_max(act_now, inp.previous_urgency)
            advice = next((self._advice(r) for r in red_flags if r.urgency == urgency), None)
            if advice is None and urgency in URGENCY_ACT_NOW:
                advice = URGENCY_ADVICE[urgency]
            if inp.previous_urgency and urgency_rank(inp.previous_urgency) < urgency_rank(act_now):
                reasons.append(Reason("kept_earlier_level", "Kept: an earlier turn reached this level", urgency))
            return TriageDecision(urgency, question, False, advice, _unique(reasons), tuple(r.rule_id for r in red_flags),
                                  tuple(c.id for c in interview.complaints), differential, record, None)

        # Conclusion.
        for complaint in interview.complaints:
            reasons.append(Reason(f"baseline_{complaint.id}", f"Usual disposition for {complaint.label.lower()} "
                                  "when no red flag is present", complaint.baseline_urgency))
        if posterior is not None:
            top = ", ".join(f"{r.pathology} {r.probability:.0%}" for r in differential[:3])
            reasons.append(Reason("differential_severity", "Most severe likely pathology (DDXPlus severity)",
                                  differential_level, (top,)))
        declined = [f for c in interview.complaints for f in c.questions
                    if conversation.findings.get(f) and conversation.findings[f].assertion == "unsure"]
        if declined:
            reasons.append(Reason("uncertain_red_flag_answers", "Some red-flag questions could not be answered, "
                                  "so self-care is not advised", "consultation",
                                  tuple(self.knowledge.findings[f].label for f in declined)))
        if inp.previous_urgency:
            reasons.append(Reason("kept_earlier_level", "Kept: an earlier turn reached this level", inp.previous_urgency))
        urgency = urgency_max(*(r.urgency for r in reasons))
        assert urgency is not None
        # Only the reasons that set the level explain it; lower ones would read as contradictions.
        decisive = tuple(r for r in _unique(reasons) if r.urgency == urgency or r in red_flags)
        advice = next((self._advice(r) for r in red_flags if r.urgency == urgency), None) or URGENCY_ADVICE[urgency]
        summary = self._summary(interview, urgency, advice)
        return TriageDecision(urgency, None, True, advice, decisive, tuple(r.rule_id for r in red_flags),
                              tuple(c.id for c in interview.complaints), differential, record, summary)

    def _differential_level(self, posterior, observed: Mapping[str, bool]) -> str | None:
        if posterior is None:
            return None
        counted = self.differential.explaining(observed, support=self.settings.differential_support)
        return self.differential.severity_urgency(posterior, self.settings.severity_thresholds, counted)

    def _advice(self, reason: Reason) -> str | None:
        rule = next((r for r in self.knowledge.red_flags if r.id == reason.rule_id), None)
        return rule.advice if rule else None

    def _record(self, interview: _Interview) -> dict[str, Any]:
        conversation = interview.conversation
        findings = [
            {"id": fid, "label": self.knowledge.findings[fid].label, "assertion": state.assertion,
             "words": state.words, "source": state.source}
            for fid, state in sorted(conversation.findings.items(), key=lambda kv: kv[1].message_index)
        ]
        return {
            "findings": findings,
            "complaints": [c.label for c in interview.complaints],
            "age": conversation.age, "sex": conversation.sex, "pregnant": conversation.pregnant,
            "duration": conversation.duration, "severity": conversation.severity,
            "medications": conversation.medications, "conditions": conversation.conditions,
            "allergies": conversation.allergies, "habits": conversation.habits,
            "declined": sorted(conversation.declined),
        }

    def _summary(self, interview: _Interview, urgency: str, advice: str) -> str:
        """The patient's summary, advice first (what they came for), then what they told me, in short paragraphs
        (the chat bubble keeps line breaks). Denied warning signs are counted, not listed: the clinician's record
        has them one by one."""
        conversation = interview.conversation
        has = [self.knowledge.findings[f].label for f, s in conversation.findings.items()
               if s.assertion in ("present", "possible")]
        # "chest pain" says "pain", "barking cough" says "cough": the general finding is not listed again.
        has = [label for label in has if not any(
            other != label and re.search(rf"\b{re.escape(label)}\b", other) for other in has)]
        lacks = [self.knowledge.findings[f].label for f, s in conversation.findings.items() if s.assertion == "absent"]
        paragraphs = [f"My advice: {URGENCY_LABELS[urgency].lower()}. {advice}"]
        told = []
        if has:
            told.append(f"You told me about {_join(has)}.")
            if conversation.duration:
                told.append(f"It started: {conversation.duration}.")
        if lacks:
            shown = lacks[:SUMMARY_DENIED_SHOWN]
            more = len(lacks) - len(shown)
            told.append(f"You don't have {_join(shown, 'or')}" + (f", nor {more} other warning signs I asked about."
                                                                    if more else "."))
        if conversation.medications:
            told.append(f"Medicines: {_join(conversation.medications)}.")
        if conversation.conditions:
            told.append(f"Other conditions: {_join(conversation.conditions)}.")
        if told:
            paragraphs.append(" ".join(told))
        paragraphs.append("You can keep writing here if anything changes or you remember something else.")
        return "\n\n".join(paragraphs)


def _age_words(age: float | None) -> str:
    if age is None:
        return "unknown"
    if age < 1:
        return f"{round(age * 52)} weeks"
    return f"{age:g} years"


def _join(items: Sequence[str], last: str = "and") -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _unique(reasons: Sequence[Reason]) -> tuple[Reason, ...]:
    seen: dict[str, Reason] = {}
    for reason in reasons:
        seen.setdefault(reason.rule_id, reason)
    return tuple(seen.values())


def _entity_ok(entity: Mapping[str, Any], text: str) -> bool:
    start, end = entity.get("start"), entity.get("end")
    return isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)


def _assertion_none(text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    return ["present"] * len(spans)
