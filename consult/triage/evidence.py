"""Evidence from the whole conversation: findings stated in the patient's words, answers to the question just
asked, and the patient's own fields (age, sex, pregnancy, duration, severity, medicines, habits).

Pure Python. The assertion of a finding comes from the extractor's mention that covers the matched words when
there is one, else from the assertion detector the caller passes in (`AssertionOf`: ner_engine.context's ConText
rules in the app), so that negation belongs to a finding, not to a message: "No fever. My neck feels stiff"
gives fever absent and stiff neck present.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consult.triage.knowledge import Finding
from consult.vocabulary import ASSERTIONS

# (text, [(start, end)]) -> one assertion per span
AssertionOf = Callable[[str, Sequence[tuple[int, int]]], list[str]]
# Words allowed between the parts of a synonym written with "...": stays inside one clause.
_GAP = r"(?:[\s,]+(?!(?:but|and|or|though|although|except|however)\b)[\w'/-]+){0,3}?[\s,]+"
_CLAUSE_BREAK = re.compile(r"[.!?;\n]")


def text_normalise(text: str) -> str:
    """Lowercase, typographic apostrophes and zero-width characters folded; the length is kept so that
    offsets into the result are offsets into the original text."""
    folded = []
    for char in text:
        if char in "\u2019\u2018\u00b4`":
            char = "'"
        elif char in "\u200b\u200c\u200d\u2060\ufeff\u00ad":
            char = " "
        folded.append(char.lower() if len(char.lower()) == 1 else char)
    return "".join(folded)


def _word(word: str) -> str:
    escaped = re.escape(word).replace("'", "'?").replace(r"\-", r"[-\s]?")
    return escaped


def synonym_regex(synonym: str) -> str:
    """A regular expression for one synonym: words on word boundaries, apostrophes optional, '...' a gap
    of up to three words in the same clause."""
    parts = [p.strip() for p in synonym.split("...")]
    body = _GAP.join(r"\s+".join(_word(w) for w in part.split()) for part in parts if part)
    return rf"(?<![\w']){body}(?![\w'])"


@dataclass(frozen=True)
class FindingMatcher:
    """Finds the knowledge base's findings in a text."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (finding id, alternation of its synonyms)

    @classmethod
    def build(cls, findings: Mapping[str, Finding]) -> FindingMatcher:
        patterns = []
        for finding in findings.values():
            # Longest synonyms first so that the alternation prefers the most specific phrase.
            synonyms = sorted(finding.synonyms, key=len, reverse=True)
            patterns.append((finding.id, re.compile("|".join(synonym_regex(s) for s in synonyms))))
        return cls(tuple(patterns))

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """[(finding id, start, end)] in the normalised `text`, all matches of every finding."""
        return [(fid, m.start(), m.end()) for fid, pattern in self.patterns for m in pattern.finditer(text)]


# --------------------------------------------------------------------------- answers


_YES = re.compile(
    r"^(?:yes|yeah|yea|yep|yup|ya|aye|y|correct|right|sure|definitely|absolutely|a bit|a little|sometimes|"
    r"kind of|kinda|sort of|i think so|probably|that'?s right)(?:\b|$)"
    r"|^(?:i do|i have|i am|i'?m|it is|it does|they are|they do|i did|there is|there are)$"
)
_NO = re.compile(
    r"^(?:no|nope|nah|n|not really|not at all|never|none|nothing|i don'?t think so|negative|not that i know( of)?)"
    r"(?:\b|$)"
    r"|^(?:i don'?t|i do not|i haven'?t|i have not|i'?m not|i am not|it isn'?t|it is not|it doesn'?t|"
    r"it does not|i didn'?t|they aren'?t|there isn'?t)$"
)
_UNSURE = re.compile(
    r"^(?:i'?m not sure|not sure|unsure|i don'?t know|dont know|don'?t know|dunno|no idea|maybe|possibly|"
    r"i can'?t tell|can'?t say|hard to say|i'?d rather not say|rather not say|prefer not to say|skip)(?:\b|$)"
)


# Words that may follow a yes/no without making it a statement ("no thanks", "yes I do", "nope, not at all").
_ANSWER_FILLER = frozenset(
    "thanks thank you sorry i i'm im do don't dont does doesn't not it it's its is isn't at all really never none "
    "nothing have haven't am was wasn't did didn't mate doc doctor so think there they are a bit little".split()
)


def answer_read(text: str) -> str | None:
    """'yes', 'no' or 'unsure' when the message opens with a short answer to a yes/no question, else None.

    Only the first clause counts and only when it is the answer alone: "No." or "no, it's fine" are answers,
    "No fever" is not (it states a finding, which the finding matcher reads).
    """
    first = _CLAUSE_BREAK.split(text_normalise(text).strip(), maxsplit=1)[0]
    first = re.split(r",|\b(?:but|and|though)\b", first, maxsplit=1)[0].strip(" -!")
    for label, pattern in (("unsure", _UNSURE), ("no", _NO), ("yes", _YES)):
        match = pattern.match(first)
        if match and all(word in _ANSWER_FILLER for word in first[match.end():].split()):
            return label
    return None


# --------------------------------------------------------------------------- the patient's fields


_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a": 1, "an": 1, "couple of": 2, "few": 3, "several": 3,
}
_NUM = r"(\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten)"
_AGE = [
    re.compile(rf"\b(?:i'?m|i am|aged?|age:?|he'?s|she'?s|he is|she is|they'?re|is)\s+{_NUM}\s*(years?|yrs?|y/?o|months?|weeks?|days?)?\b"),
    re.compile(rf"\b{_NUM}\s*(years?|yrs?|months?|weeks?|days?)\s*old\b"),
    re.compile(rf"\b{_NUM}\s*(y/?o|yo)\b"),
    re.compile(rf"\b{_NUM}\s*(m|f)\b"),
]
_AGE_ANSWER = re.compile(rf"^(?:about |around |almost )?{_NUM}\s*(years?|yrs?|y/?o|months?|weeks?|days?)?(?:\s*old)?\b")
# A bare word in an answer to the age-and-sex question ("34, female", "M", "she's 3").
_SEX_ANSWER_FEMALE = re.compile(r"\b(?:female|woman|girl|lady|she|f)\b")
_SEX_ANSWER_MALE = re.compile(r"\b(?:male|man|boy|guy|he|m)\b")
_SEVERITY_SCORE = re.compile(r"\b(\d{1,2})\s*(?:/|out of)\s*10\b")
_SEVERITY_WORDS = [
    (re.compile(r"\b(?:worst (?:pain |headache )?(?:of my life|ever)|unbearable|excruciating|agony|agonising|agonizing)\b"), 10),
    (re.compile(r"\b(?:really bad|very bad|severe|terrible|awful|horrible|intense|extreme)\b"), 8),
    (re.compile(r"\b(?:quite bad|bad|moderate|medium|pretty sore)\b"), 5),
    (re.compile(r"\b(?:mild|slight|not too bad|not that bad|a bit|a little|minor)\b"), 3),
]
_DURATION = re.compile(
    r"\b(?:(?:for|over|about|around|nearly|almost)\s+(?:about\s+|around\s+|nearly\s+|almost\s+|over\s+)?(?:the\s+)?(?:past\s+|last\s+)?(?:a|an|one|two|three|four|five|six|"
    r"seven|eight|nine|ten|few|couple(?:\s+of)?|several|\d+)\s+(?:minutes?|hours?|days?|nights?|weeks?|months?|years?)"
    r"|(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|few|couple(?:\s+of)?|several|\d+)\s+"
    r"(?:minutes?|hours?|days?|nights?|weeks?|months?|years?)(?:\s+ago)?"
    r"|since\s+(?:yesterday(?:\s+(?:morning|afternoon|evening|night|lunchtime))?|today|this\s+\w+|last\s+\w+|(?:mon|tues|wednes|thurs|fri|satur|sun)day|the\s+\w+|\d+\w*)"
    r"|(?:yesterday|this\s+(?:morning|afternoon|evening)|last\s+(?:night|week|month|year)|earlier\s+today|all\s+(?:day|night|week))"
    r"|x\s*\d+\s*(?:days?|weeks?|hours?))\b"
)
_PREGNANT = re.compile(r"\b(?:i'?m|i am|currently|being)\s+(?:\d+\s+weeks?\s+)?pregnant\b|\b\d+\s+weeks?\s+pregnant\b")
_NOT_PREGNANT = re.compile(r"\b(?:not|no(?:t)? chance of being|can'?t be)\s+pregnant\b")
# Habits are recorded as habits, never as medicines or complaints (issue: "smoke" filled current medications).
_HABITS = {
    "smoking": re.compile(r"\b(?:i smoke|smoker|smoking|cigarettes?|fags?|vap(?:e|es|ing))\b"),
    "alcohol": re.compile(r"\b(?:i drink|drinker|alcohol|beers?|wine|pints?|units a week)\b"),
    "caffeine": re.compile(r"\b(?:coffee|caffeine|energy drinks?)\b"),
    "recreational drugs": re.compile(r"\b(?:weed|cannabis|cocaine|recreational drugs?)\b"),
}
HABIT_WORDS = re.compile(r"^(?:smoke|smoking|smoker|cigarettes?|fags?|vape|vaping|alcohol|drink|drinking|beer|wine|"
                         r"coffee|caffeine|tea|weed|cannabis)$")


def _number(token: str) -> float:
    return float(token) if token[0].isdigit() else float(_NUMBER_WORDS[token])


def _years(value: float, unit: str | None) -> float:
    unit = (unit or "y").lower()
    if unit.startswith("month"):
        return round(value / 12, 3)
    if unit.startswith("week"):
        return round(value / 52, 3)
    if unit.startswith("day"):
        return round(value / 365, 3)
    return value


def age_read(text: str, *, answering: bool) -> float | None:
    """Age in years stated in `text` ("I'm 58", "6 weeks old", "58M"); a bare number when `answering`
    the age question. None when no age is stated or it is outside 0-120."""
    text = text_normalise(text)
    candidates = []
    if answering and (m := _AGE_ANSWER.match(text.strip())):
        candidates.append((m.group(1), m.group(2)))
    for pattern in _AGE:
        for m in pattern.finditer(text):
            unit = m.group(2) if m.lastindex and m.lastindex >= 2 else None
            if unit in ("m", "f"):
                unit = None
            if unit is None and pattern is _AGE[0] and not answering and not re.search(r"\b(?:i'?m|i am|aged?|age)\s", m.group(0)):
                continue  # "she is 2" needs a unit or the age question
            candidates.append((m.group(1), unit))
    for number, unit in candidates:
        years = _years(_number(number), unit)
        if 0 <= years <= 120 and not (unit is None and years < 1 and not answering):
            return years
    return None


def sex_read(text: str, *, answering: bool) -> str | None:
    """'female' | 'male' when stated ("I'm a woman", "34F", "pregnant"); when `answering` the question, also
    a bare word anywhere in the answer ("34, female", "M")."""
    text = text_normalise(text).strip()
    if answering:
        if _SEX_ANSWER_FEMALE.search(text):
            return "female"
        if _SEX_ANSWER_MALE.search(text):
            return "male"
    if re.search(r"\bi'?m (?:a )?(?:woman|female|girl)\b|\b\d+\s*f\b|\bpregnant\b|\bmy periods?\b"
                 r"|\b(?:year old|yo|y/o) (?:woman|female|girl|lady)\b", text):
        return "female"
    if re.search(r"\bi'?m (?:a )?(?:man|male|guy|boy)\b|\b\d+\s*m\b|\b(?:year old|yo|y/o) (?:man|male|guy|boy)\b", text):
        return "male"
    return None


def severity_read(text: str, *, answering: bool) -> int | None:
    """0-10 score: "8/10", "8 out of 10", "it's like 8" (when answering), or words ("severe" -> 8)."""
    text = text_normalise(text)
    m = _SEVERITY_SCORE.search(text)
    if m and 0 <= int(m.group(1)) <= 10:
        return int(m.group(1))
    if answering:
        m = re.match(r"^\D{0,20}?\b(\d{1,2})\b(?!\s*(?:days?|weeks?|hours?|years?|months?|mins?|minutes?))", text.strip())
        if m and 0 <= int(m.group(1)) <= 10:
            return int(m.group(1))
    for pattern, score in _SEVERITY_WORDS:
        if pattern.search(text):
            return score
    return None


def duration_read(text: str) -> str | None:
    """How long the problem has lasted, in the patient's words ("for two days", "since Tuesday"), or None. An age
    ("my 3 year old", "a 6-month-old baby") is not a duration."""
    text = text_normalise(text)
    for m in _DURATION.finditer(text):
        if not re.match(r"[\s-]*old\b", text[m.end():]):
            return m.group(0)
    return None


def pregnancy_read(text: str) -> bool | None:
    text = text_normalise(text)
    if _NOT_PREGNANT.search(text):
        return False
    if _PREGNANT.search(text):
        return True
    return None


_ALLERGY = re.compile(r"\ballergic to ([a-z][a-z -]{1,40}?)(?=[.,;!?]|\band\b|$)|\b([a-z]+) allergy\b")


def allergies_read(text: str) -> list[str]:
    """Medicines or substances the patient says they are allergic to ("allergic to penicillin")."""
    return [(m.group(1) or m.group(2)).strip() for m in _ALLERGY.finditer(text_normalise(text))]


def habits_read(text: str) -> list[str]:
    text = text_normalise(text)
    return [habit for habit, pattern in _HABITS.items() if pattern.search(text)]


# --------------------------------------------------------------------------- findings


@dataclass
class FindingState:
    """What the conversation says about one finding: `assertion` in ASSERTIONS or "unsure" (asked, patient
    did not know), where it came from, and the patient's words."""

    assertion: str
    source: str  # "message" | "answer" | "entity code"
    words: str
    message_index: int


@dataclass
class Conversation:
    """Everything the engine reads, rebuilt on every message from the stored messages and answers."""

    findings: dict[str, FindingState] = field(default_factory=dict)
    age: float | None = None
    sex: str | None = None
    pregnant: bool | None = None
    duration: str | None = None
    severity: int | None = None
    medications: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)
    habits: list[str] = field(default_factory=list)
    declined: set[str] = field(default_factory=set)  # general questions answered "none"/"don't know"
    # General questions a bare "no" answered though they ask when or how much ("When did this start?" "No."):
    # asked once more, in other words.
    unclear: set[str] = field(default_factory=set)

    def present(self, finding_id: str) -> bool:
        state = self.findings.get(finding_id)
        if state is not None and state.assertion == "historical" and finding_id.startswith("history_"):
            return True  # "I had cancer" states a history finding
        return state is not None and state.assertion in ("present", "possible", "unsure")

    def known(self, finding_id: str) -> bool:
        return finding_id in self.findings


def finding_update(conversation: Conversation, finding_id: str, state: FindingState) -> None:
    """The latest statement about a finding wins ("no fever" after "fever" means it went), except that a
    current finding is not cancelled by a history, family or hypothetical mention of the same words."""
    old = conversation.findings.get(finding_id)
    if old is not None and old.assertion in ("present", "possible") and state.assertion in (
        "historical", "family", "hypothetical"
    ):
        return
    conversation.findings[finding_id] = state


def _covering_entity(entities: Sequence[Mapping[str, Any]], start: int, end: int) -> Mapping[str, Any] | None:
    best = None
    for entity in entities:
        if entity.get("type") not in ("SYMPTOM", "DISEASE"):
            continue
        if entity["start"] < end and start < entity["end"]:
            if best is None or (entity["end"] - entity["start"]) > (best["end"] - best["start"]):
                best = entity
    return best


def entity_assertion(entity: Mapping[str, Any]) -> str | None:
    attributes = entity.get("attributes") or {}
    assertion = attributes.get("assertion", entity.get("assertion"))
    return assertion if assertion in ASSERTIONS else None


def message_findings(
    *,
    text: str,
    entities: Sequence[Mapping[str, Any]],
    matcher: FindingMatcher,
    codes: Mapping[tuple[str, str], set[str]],
    assertion_of: AssertionOf,
    similar: Callable[..., Sequence[Any]] | None = None,
) -> list[tuple[str, str, str]]:
    """[(finding id, assertion, the patient's words)] stated in one message.

    `entities` are the extractor's mentions of this message ({"start","end","type","text","attributes"}).
    A finding is stated by its synonyms or by a mention whose code (system, code) the finding lists in `codes`,
    unless the mention lies inside a synonym's match (the phrase is the more specific reading). Overlapping
    synonym matches of different findings all count ("pain in my chest" is chest pain and pain). `similar`
    (`FindingSimilarity.find`) adds the findings a clause means in other words; a negation in the clause denies
    the finding unless the finding is itself a negative ("I can't swallow my spit").
    """
    norm = text_normalise(text)
    matches = matcher.find(norm)
    found: list[tuple[str, str, str]] = []
    unresolved: list[tuple[str, int, int]] = []
    for finding_id, start, end in matches:
        entity = _covering_entity(entities, start, end)
        assertion = entity_assertion(entity) if entity is not None else None
        # A phrase that carries its own negation ("don't want to live", "no wet nappies") is stated, not denied:
        # the mention's assertion would read its inner cue, so the detector reads it with the cue blanked.
        if assertion is None or _NEGATION_WORD.search(norm[start:end]):
            unresolved.append((finding_id, start, end))
        else:
            found.append((finding_id, _patient_assertion(assertion, norm, start), text[start:end]))
    if unresolved:
        masked_text = _negations_blanked(text, norm, [(s, e) for _, s, e in unresolved])
        for (finding_id, start, end), assertion in zip(
            unresolved, assertion_of(masked_text, [(s, e) for _, s, e in unresolved])
        ):
            found.append((finding_id, _patient_assertion(assertion, norm, start), text[start:end]))
    for entity in entities:
        # The patient's own phrase outranks a code: in "bright light hurts my eyes" the knowledge base reads
        # dislike of light, and the mention "hurts" coded with its site (eye pain) is not a second finding.
        if any(start <= entity["start"] and entity["end"] <= end for _, start, end in matches):
            continue
        attributes = entity.get("attributes") or {}
        for code in attributes.get("codes") or ():
            system = {"HPO": "hpo", "ICD-10-CM": "icd10cm"}.get(str(code.get("system")))
            for finding_id in codes.get((system, str(code.get("code"))), ()):
                found.append((finding_id, entity_assertion(entity) or "present", entity.get("text", "")))
    if similar is not None:
        stated = {finding_id for finding_id, _, _ in found}
        for match in similar(text, known=set(stated)):
            if match.finding_id in stated:
                continue
            stated.add(match.finding_id)
            span = (match.start, match.end)
            read = _negations_blanked(text, norm, [span]) if match.negative else text
            assertion = assertion_of(read, [span])[0]
            found.append((match.finding_id, _patient_assertion(assertion, norm, match.start),
                          text[match.start:match.end]))
    return found


def _negations_blanked(text: str, norm: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with the negation words inside `spans` (character offsets; `norm` is its `text_normalise`, same
    length) blanked: the finding's own words carry them ("can't swallow"), so they do not deny it."""
    blanked = list(text)
    for start, end in spans:
        for m in _NEGATION_WORD.finditer(norm, start, end):
            blanked[m.start():m.end()] = " " * (m.end() - m.start())
    return "".join(blanked)


_NEGATION_WORD = re.compile(r"(?<![\w'])(?:no|not|never|don'?t|doesn'?t|didn'?t|haven'?t|hasn'?t|isn'?t|aren'?t|"
                            r"won'?t|can'?t|cannot|without|nothing)(?![\w'])")
_ABOUT_A_CHILD = re.compile(r"\b(?:my|our|the) (?:baby|babies|son|daughter|child|kid|toddler|little one|boy|girl|"
                            r"newborn|infant)\b")


def _patient_assertion(assertion: str, norm: str, start: int) -> str:
    """A parent consulting about their child: "my baby has a temperature" is the patient's finding, not family
    history (the experiencer rules read "my baby" as a relative)."""
    if assertion == "family" and _ABOUT_A_CHILD.search(norm[norm.rfind(".", 0, start) + 1:start]):
        return "present"
    return assertion


def habit_words_match(*, text: str) -> bool:
    """Whether a mention's words are a habit (smoking, alcohol, coffee, ...), not a medicine."""
    return bool(HABIT_WORDS.match(text.strip().lower()))


def medications_read(entities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The patient's current medicines: DRUG mentions that are present (or historical: taken earlier for
    this complaint), never habits."""
    medications = []
    for entity in entities:
        if entity.get("type") != "DRUG":
            continue
        words = entity.get("text", "").strip()
        if habit_words_match(text=words) or entity_assertion(entity) in ("absent", "family", "hypothetical"):
            continue
        medications.append(words)
    return medications


def conditions_read(entities: Sequence[Mapping[str, Any]], finding_words: set[str]) -> list[str]:
    """Known conditions: DISEASE mentions of the patient's own (present or historical) that are not part of a
    finding the knowledge base read in the same words ("stiff" in "my neck feels stiff" is the stiff neck)."""
    conditions = []
    for entity in entities:
        if entity.get("type") != "DISEASE":
            continue
        words = entity.get("text", "").strip()
        if any(words.lower() in stated for stated in finding_words) or entity_assertion(entity) in (
                "absent", "family", "hypothetical"):
            continue
        conditions.append(words)
    return conditions
