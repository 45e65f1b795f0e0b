"""Attributes of an entity: duration/onset, severity, frequency and body site, and for medicines dose and route,
each linked to the entity it modifies (the nearest one in the same clause). A degree word straight before a
symptom ("very itchy") is its severity.

Candidates come from the DURATION / SEVERITY / ANATOMY entities the model may already return, plus regular
expressions and small lexicons below (model spans win where both overlap). Spans are character offsets into
the message; "for" is left out of a duration ("fever for [three days]"), "since"/"ago" are kept.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ner_engine.context.assertion import sentence_bounds

KINDS: tuple[str, ...] = ("duration", "severity", "frequency", "body_site", "dose", "route")
MODEL_TYPES = {"DURATION": "duration", "SEVERITY": "severity", "ANATOMY": "body_site"}
# Which entity types each attribute kind may modify.
TARGET_TYPES = {
    "duration": {"SYMPTOM", "DISEASE", "DRUG"},
    "severity": {"SYMPTOM", "DISEASE"},
    "frequency": {"SYMPTOM", "DISEASE", "DRUG"},
    "body_site": {"SYMPTOM", "DISEASE"},
    "dose": {"DRUG"},
    "route": {"DRUG"},
}

_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                 "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|hundred")
_NUM = (rf"(?:\d+(?:[.,]\d+)?|(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))?|a few|a couple(?: of)?|couple of|few|"
        r"several|many|some|a|an|one and a half|a half|half an?)")
_UNIT = (r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|h|days?|nights?|weeks?|wks?|months?|mos?|years?|yrs?|"
         r"decades?|fortnights?)")
_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
_MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|"
          r"apr|jun|jul|aug|sep|sept|oct|nov|dec)")
_SP = r"[\s\u2005\u2009\u00a0]"  # case reports use thin and four-per-em spaces inside "3\u2005days"

_DURATION = [
    # clinical shorthand: "coughing x3 days", "x 2 weeks", "for 3/7" (days) or "2/52" (weeks)
    rf"x{_SP}*\d+(?:{_SP}*-{_SP}*\d+)?{_SP}*{_UNIT}",
    rf"(?<![\d/])\d{{1,2}}{_SP}*/{_SP}*(?:7|52|12)(?![\d/.,])",
    # "3 days", "2-3 weeks", "6-week history", "the past few days", "about two weeks ago", "10-day course"
    rf"(?:(?:the{_SP}+)?(?:past|last|previous|next|following|first|further|another){_SP}+)?"
    rf"(?:(?:about|around|approximately|approx\.?|almost|nearly|over|more{_SP}+than|less{_SP}+than|at{_SP}+least|"
    rf"roughly|just{_SP}+over|just{_SP}+under|under|up{_SP}+to){_SP}+)?"
    rf"{_NUM}(?:{_SP}*(?:-|–|to|or){_SP}*{_NUM})?(?:{_SP}*-{_SP}*|{_SP}+|(?<=\d)){_UNIT}"
    # Not an age ("45-year-old") nor a point in time ("two days later", "1 year after surgery").
    rf"(?![\w-]*{_SP}*(?:-{_SP}*)?(?:old|of{_SP}+age|later|after|earlier|before|prior|post|following|into))"
    rf"(?:{_SP}+(?:ago|history|period|course|duration|now))?",
    # onset: "since Monday", "since yesterday", "since last week", "since 2019", "since I was a kid"
    rf"since{_SP}+(?:(?:yesterday|last{_SP}+night|{_DAY})(?:{_SP}+(?:morning|afternoon|evening|night|lunchtime|lunch))|"
    rf"yesterday|today|this{_SP}+(?:morning|afternoon|evening|week|month|year)|last{_SP}+\w+|"
    rf"(?:the{_SP}+)?(?:weekend|morning|evening|night|beginning{_SP}+of{_SP}+\w+)|{_DAY}|{_MONTH}|\d{{4}}|"
    rf"childhood|birth|christmas|easter|i{_SP}+was{_SP}+(?:a{_SP}+)?(?:kid|child|baby|teenager|young|little)|"
    rf"(?:{_NUM}{_SP}+{_UNIT}{_SP}+ago))",
    rf"(?:started|began|came{_SP}+on|started{_SP}+up|kicked{_SP}+in){_SP}+(?:yesterday|today|last{_SP}+\w+|this{_SP}+\w+|"
    rf"on{_SP}+{_DAY}|{_NUM}{_SP}+{_UNIT}{_SP}+ago|suddenly|gradually)",
    rf"(?:yesterday|last{_SP}+night|this{_SP}+(?:morning|afternoon|evening)|overnight|all{_SP}+(?:day|night|week)|"
    rf"for{_SP}+(?:ages|years|months|weeks|days|a{_SP}+while|a{_SP}+long{_SP}+time|some{_SP}+time)|lifelong|"
    rf"over{_SP}+the{_SP}+(?:years|past{_SP}+\w+)|on{_SP}+{_DAY})",
]

_INTENSIFIER = (r"(?:really|very|quite|so|extremely|pretty|super|incredibly|unbearably|a{_SP}+bit|a{_SP}+little|"
                r"slightly|fairly|rather|somewhat|bit|too|terribly|awfully|seriously)").replace("{_SP}", _SP)
_SEVERITY_WORDS = (
    r"(?:mild(?:ly)?|moderate(?:ly)?|severe(?:ly)?|bad(?:ly)?|terrible|awful|horrible|horrendous|unbearable|"
    r"excruciating|intense|extreme(?:ly)?|slight(?:ly)?|minor|massive|worst|marked(?:ly)?|significant(?:ly)?|"
    r"profound(?:ly)?|serious|agoni[sz]ing|crippling|debilitating|high-grade|low-grade|large|huge|extensive|"
    r"minimal(?:ly)?|strong(?:ly)?|prominent|obvious|tolerable|manageable|light|heavy|awful|dreadful|"
    r"killing{_SP}+me|a{_SP}+lot|like{_SP}+hell|not{_SP}+too{_SP}+bad|not{_SP}+that{_SP}+bad)").replace("{_SP}", _SP)
_SEVERITY = [
    rf"(?:{_SEVERITY_WORDS}{_SP}+to{_SP}+{_SEVERITY_WORDS})",
    rf"(?:{_INTENSIFIER}{_SP}+)?{_SEVERITY_WORDS}",
    rf"(?:\d{{1,2}}|ten|nine|eight|seven|six|five|four|three|two|one|zero){_SP}*(?:/|out{_SP}+of){_SP}*10\b",
    rf"grade{_SP}+(?:\d|i{{1,3}}|iv|v)\b",
]
_FREQUENCY = [
    rf"(?:once|twice|thrice|(?:{_NUM}|several|a{_SP}+few|many){_SP}+times?|{_NUM}{_SP}+(?:episodes?|attacks?|bouts?))"
    rf"(?:{_SP}+(?:daily|weekly|monthly|nightly|hourly)|{_SP}+(?:a|per|every|each|an|in{_SP}+a|in{_SP}+the){_SP}+"
    rf"(?:{_NUM}{_SP}+)?(?:{_UNIT}|morning|evening|night))?",
    # prescription shorthand: "bd", "tds", "qds", "od", "prn", "as needed"
    rf"(?-i:OD|BD|BID|TDS|TID|QDS|QID|PRN|bd|tds|qds|prn)|as{_SP}+(?:needed|required)|when{_SP}+needed",
    rf"(?:every|each){_SP}+(?:(?:{_NUM}|other|few|couple{_SP}+of){_SP}+)?(?:{_UNIT}|morning|evening|night|time|meal)s?",
    # "a week" after "for" / "in" / "over" is a duration ("pain for a week"), not a rate
    rf"(?<!for{_SP})(?<!in{_SP})(?<!over{_SP})(?<!about{_SP})(?:per|a){_SP}+(?:day|night|week|month)(?=\b)",
    rf"(?:daily|nightly|weekly|monthly|hourly|constantly|constant|continuous(?:ly)?|all{_SP}+the{_SP}+time|"
    rf"on{_SP}+and{_SP}+off|off{_SP}+and{_SP}+on|intermittent(?:ly)?|occasional(?:ly)?|sometimes|often|"
    rf"frequent(?:ly)?|rare(?:ly)?|(?:every{_SP}+)?now{_SP}+and{_SP}+then|from{_SP}+time{_SP}+to{_SP}+time|"
    rf"regularly|periodically|recurrent|recurring|episodic|comes{_SP}+and{_SP}+goes|come{_SP}+and{_SP}+go|"
    rf"at{_SP}+night|in{_SP}+the{_SP}+mornings?|at{_SP}+times|most{_SP}+days|on{_SP}+waking)",
]
_SITES = (r"head|forehead|temples?|face|eyes?|eyelids?|ears?|nose|sinus(?:es)?|mouth|lips?|jaw|teeth|tooth|gums?|"
          r"tongue|throat|neck|shoulders?|arms?|armpits?|elbows?|wrists?|hands?|fingers?|thumbs?|nails?|chest|"
          r"breasts?|nipples?|ribs?|rib{_SP}+cage|back|spine|stomach|tummy|belly|abdomen|abdominal|sides?|"
          r"flanks?|hips?|groin|pelvis|pelvic|bladder|kidneys?|genitals?|penis|testicles?|vagina|bum|buttocks?|"
          r"anus|rectum|legs?|thighs?|knees?|calf|calves|shins?|ankles?|foot|feet|toes?|heels?|soles?|skin|scalp|"
          r"lungs?|heart|liver|bowels?|joints?|muscles?|bones?|whole{_SP}+body|all{_SP}+over").replace("{_SP}", _SP)
_BODY_SITE = [
    rf"(?:(?:left|right|both|lower|upper|middle|bilateral|front|back{_SP}+of{_SP}+(?:my|the)|top{_SP}+of{_SP}+(?:my|the)|"
    rf"side{_SP}+of{_SP}+(?:my|the)|inner|outer){_SP}+)*(?:{_SITES})(?:{_SP}+(?:area|region))?",
]

_DOSE = [
    # "400mg", "2 x 500 mg", "5ml", "two puffs", "1 tablet", "10 units"
    rf"(?:(?:\d+|one|two|three|four|half(?:{_SP}+an?)?){_SP}*(?:x|×){_SP}*)?(?:\d+(?:[.,]\d+)?|one|two|three|four|half"
    rf"(?:{_SP}+an?)?|a){_SP}*(?:mg|milligrams?|mcg|micrograms?|µg|g|grams?|ml|millilit(?:re|er)s?|units?|iu|puffs?|"
    rf"tablets?|tabs?|capsules?|caps?|drops?|sachets?|patch(?:es)?|spoonfuls?|teaspoons?|sprays?)(?![\w])",
]
_ROUTE = [
    rf"(?:by{_SP}+mouth|orally|oral|intravenous(?:ly)?|intramuscular(?:ly)?|subcutaneous(?:ly)?|topical(?:ly)?|"
    rf"inhaled|via{_SP}+(?:an?{_SP}+)?inhaler|nasal{_SP}+spray|eye{_SP}+drops|ear{_SP}+drops|rectal(?:ly)?|"
    rf"under{_SP}+(?:my|the){_SP}+tongue|sublingual(?:ly)?|by{_SP}+injection|inject(?:ions?|ed|ing|s)?|on{_SP}+(?:my|the){_SP}+skin)",
    r"(?-i:PO|IV|IM|SC|SL|PR|INH)",
]

_PATTERNS = {kind: re.compile("|".join(f"(?<![\\w-])(?:{p})(?![\\w])" for p in patterns), re.IGNORECASE)
             for kind, patterns in (("frequency", _FREQUENCY), ("duration", _DURATION), ("severity", _SEVERITY),
                                    ("dose", _DOSE), ("route", _ROUTE), ("body_site", _BODY_SITE))}
# Clause breaks for linking: sentence ends plus contrastive conjunctions and semicolons.
_CLAUSE_BREAK = re.compile(r"\b(?:but|however|although|though|whereas|while|and\s+(?:also\s+)?(?:i|my))\b|;", re.IGNORECASE)
_STRIP_TIMES = re.compile(rf"^x{_SP}*(?=\d)")  # "x3 days" -> "3 days"
_STRIP_FOR = re.compile(rf"^(?:for|over|during|in){_SP}+(?=(?:about|around|approximately|almost|nearly|more|less|at|\d|"
                        rf"{_NUMBER_WORDS}|a |an |the |several|a few|few))", re.IGNORECASE)


@dataclass(frozen=True)
class Attribute:
    kind: str
    start: int
    end: int
    text: str
    source: str  # "rule" or "model"

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end}


def attributes_find(text: str, model_spans: Sequence[tuple[int, int, str]] = ()) -> list[Attribute]:
    """Every attribute span in `text`: model DURATION/SEVERITY/ANATOMY spans, then rule matches that overlap
    none already taken (frequency first, so "twice a day" is not read as the duration "a day")."""
    taken: list[Attribute] = []
    for start, end, entity_type in model_spans:
        kind = MODEL_TYPES.get(entity_type)
        if kind:
            taken.append(Attribute(kind, start, end, text[start:end], "model"))
    for kind, pattern in _PATTERNS.items():
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "duration":
                skip = _STRIP_FOR.match(match.group()) or _STRIP_TIMES.match(match.group())
                if skip:
                    start += skip.end()
            if any(a.start < end and start < a.end for a in taken):
                continue
            taken.append(Attribute(kind, start, end, text[start:end], "rule"))
    return sorted(taken, key=lambda a: (a.start, a.end))


_WEAK = {"light", "heavy", "a lot", "large", "strong", "strongly", "huge", "obvious", "prominent", "extensive",
         "all over", "side", "sides", "back"}


def clause_bounds(text: str) -> list[tuple[int, int]]:
    bounds = []
    for start, end in sentence_bounds(text):
        cut = start
        for match in _CLAUSE_BREAK.finditer(text, start, end):
            bounds.append((cut, match.start()))
            cut = match.start()
        bounds.append((cut, end))
    return bounds


_INTENSIFIER_BEFORE = re.compile(rf"(?<![\w-])(?:really|very|extremely|so|super|incredibly|terribly|awfully|"
                                 rf"unbearably|horribly|insanely|crazy|quite|a{_SP}+bit|a{_SP}+little|slightly|mildly|"
                                 rf"severely){_SP}+$", re.IGNORECASE)


def intensifier_before(text: str, start: int) -> Attribute | None:
    """A degree word straight before a mention is its severity: "very [itchy]", "really [sore]", "a bit [dizzy]"."""
    match = _INTENSIFIER_BEFORE.search(text, max(0, start - 20), start)
    if match is None:
        return None
    end = match.start() + len(match.group().rstrip())
    return Attribute("severity", match.start(), end, text[match.start():end], "rule")


def attributes_link(text: str, entities: Sequence[tuple[int, int, str]], attributes: Sequence[Attribute],
                    *, max_gap: int = 60, intensifiers: bool = True) -> list[dict[str, Attribute]]:
    """For each entity (start, end, type), the nearest attribute of each kind in the same clause.
    Each attribute goes to one entity: the one nearest to it (a body site inside the entity's own span first).
    With `intensifiers`, an entity left without a severity takes a degree word straight before it ("very itchy")."""
    clauses = clause_bounds(text)

    def clause_of(position: int) -> int:
        return next((i for i, (s, e) in enumerate(clauses) if s <= position < e), len(clauses) - 1)

    linked: list[dict[str, tuple[float, Attribute]]] = [{} for _ in entities]
    for attribute in attributes:
        best: tuple[float, int] | None = None
        for index, (start, end, entity_type) in enumerate(entities):
            if entity_type not in TARGET_TYPES[attribute.kind]:
                continue
            if attribute.start >= start and attribute.end <= end:
                if attribute.kind != "body_site":
                    continue  # a model span equal to the entity itself
                distance = -1.0
            elif attribute.start < end and start < attribute.end:
                continue
            else:
                if clause_of(attribute.start) != clause_of(start):
                    continue
                before = attribute.end <= start
                gap = start - attribute.end if before else attribute.start - end
                if gap > max_gap:
                    continue
                if attribute.text.lower() in _WEAK and gap > 3:
                    continue
                # Severity usually precedes what it modifies ("severe pain"), duration follows ("pain for 3 days").
                bias = {"severity": -0.5 if before else 0.0, "duration": 0.0 if not before else 0.5,
                        "dose": 0.0 if not before else 0.5}.get(attribute.kind, 0.0)
                distance = len((text[attribute.end:start] if before else text[end:attribute.start]).split()) + bias
            if best is None or distance < best[0]:
                best = (distance, index)
        if best is not None:
            current = linked[best[1]].get(attribute.kind)
            if current is None or best[0] < current[0]:
                linked[best[1]][attribute.kind] = (best[0], attribute)
    result = [{kind: pair[1] for kind, pair in entry.items()} for entry in linked]
    for (start, end, entity_type), found in zip(entities, result):
        if intensifiers and "severity" not in found and entity_type in TARGET_TYPES["severity"]:
            intensifier = intensifier_before(text, start)
            if intensifier is not None:
                found["severity"] = intensifier
    return result
