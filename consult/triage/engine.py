"""Rule-based triage: next follow-up question, urgency and red-flag advice for a consultation.

Pure Python (never imports Django) so the web app, the Celery worker and the tests share it.
The medical knowledge lives in ``rules.json`` next to this file; this module is only the
interpreter. Every decision lists the rules that fired and the evidence they fired on.

Rule kinds, evaluated in this order on every call:

``slot``        fills a slot from evidence (first matching rule per slot wins). ``"empty": true``
                rules record the slot as explicitly empty (``None``), e.g. "no medications".
``none_answer`` a "none"/"no"/"nothing" reply to the pending question empties that slot.
``red_flag``    raises urgency and tells the patient what to do now.
``question``    one per slot; file order is the priority order of the follow-up questions.
``closing``     when the consultation is complete, the first matching rule sets the default
                urgency; a rule without ``when`` is the fallback.

Conditions (JSON objects with exactly one key):

``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``
``{"entity": {types?, terms?, regex?, attributes?, assertions?, exclude_slot?, limit?}}``
``{"text": {terms?, regex?, latest_only?, negation?}}``   raw patient text
``{"mention": {types?, terms?, regex?}}``  an entity if the extractor found one, else the raw text
``{"slot": {name, terms?, regex?, negation?}}``  the value of a slot filled earlier in this call
``{"pending": "<slot>"}``  the latest message answers this slot's question

``terms`` are lowercase phrases matched on word boundaries (apostrophes and hyphens optional);
``regex`` are Python regular expressions over lowercased, whitespace-collapsed text.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

URGENCY_LEVELS: tuple[str, ...] = (
    "emergency_ambulance",
    "emergency",
    "consultation_24",
    "consultation",
    "self_care",
)  # most urgent first
SLOTS: tuple[str, ...] = ("main_symptoms", "duration", "severity", "medications", "conditions")
ASSERTIONS: tuple[str, ...] = ("present", "absent", "possible", "historical", "hypothetical", "family")
# The product spec: these assertions mean the patient does not currently have the finding.
BLOCKED_ASSERTIONS: frozenset[str] = frozenset({"absent", "family", "hypothetical"})
URGENCY_LABELS: Mapping[str, str] = {
    "emergency_ambulance": "emergency (call an ambulance)",
    "emergency": "emergency (go to an emergency department now)",
    "consultation_24": "see a doctor within 24 hours",
    "consultation": "see a doctor in the next few days",
    "self_care": "self-care",
}
RULES_PATH = Path(__file__).with_name("rules.json")


# --------------------------------------------------------------------------- public data types


@dataclass(frozen=True)
class TriageInput:
    patient_texts: tuple[str, ...]  # oldest first; the last one answers `pending_slot`
    entities: tuple[dict, ...]  # merged record items {"type", "text", "assertion"?, "attributes"?}
    filled_slots: Mapping[str, str | None]  # None = explicitly empty ("none")
    asked_slots: frozenset[str]
    pending_slot: str | None
    urgency: str | None


@dataclass(frozen=True)
class Question:
    slot: str
    text: str
    rule_id: str


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    reason: str
    urgency: str | None


@dataclass(frozen=True)
class TriageDecision:
    urgency: str | None
    filled_slots: dict[str, str | None]
    question: Question | None
    fired: tuple[FiredRule, ...]
    advice: str | None  # what to do now; set only when a red flag fired
    summary: str | None  # closing summary, set only when complete
    complete: bool

    def to_dict(self) -> dict:
        return {
            "urgency": self.urgency,
            "filled_slots": dict(self.filled_slots),
            "question": None
            if self.question is None
            else {"slot": self.question.slot, "text": self.question.text, "rule_id": self.question.rule_id},
            "fired": [{"rule_id": f.rule_id, "reason": f.reason, "urgency": f.urgency} for f in self.fired],
            "advice": self.advice,
            "summary": self.summary,
            "complete": self.complete,
        }


def urgency_rank(level: str) -> int:
    """0 is the most urgent level."""
    return URGENCY_LEVELS.index(level)


def more_urgent(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if urgency_rank(a) <= urgency_rank(b) else b


# --------------------------------------------------------------------------- text helpers


def normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00b4", "'")
    return re.sub(r"\s+", " ", text).strip().lower()


# NegEx-style: a cue within a few words before the phrase, in the same clause. The scope ends at
# punctuation and "but" on purpose: "No, I have chest pain" must still fire. "can't"/"cannot" are
# not cues because patients use them to describe symptoms ("I can't breathe").
_NEGATION_CUES = frozenset(
    """no not never without deny denies denied denying neither nor don't dont doesn't doesnt
    didn't didnt haven't havent hasn't hasnt hadn't isn't isnt aren't arent wasn't wasnt
    weren't won't wont""".split()
)
_PSEUDO_NEGATIONS = frozenset(
    {("no", "idea"), ("no", "matter"), ("no", "doubt"), ("not", "sure"), ("not", "only"), ("not", "just")}
)
_NEGATION_WINDOW = 5
_CLAUSE_BREAK = re.compile(r"[.!?;:,\n]|\b(?:but|however|although|though|except)\b")
_TOKEN = re.compile(r"[a-z']+")


def is_negated(text: str, start: int) -> bool:
    """Whether the phrase starting at `start` of normalised `text` is preceded by a negation cue."""
    prefix = text[:start]
    last_break = None
    for last_break in _CLAUSE_BREAK.finditer(prefix):
        pass
    if last_break is not None:
        prefix = prefix[last_break.end() :]
    tokens = _TOKEN.findall(prefix)[-_NEGATION_WINDOW:]
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _NEGATION_CUES and (token, following) not in _PSEUDO_NEGATIONS:
            return True
    return False


def _term_regex(term: str) -> str:
    escaped = re.escape(normalise(term))
    escaped = escaped.replace(r"\ ", r"\s+").replace(r"\-", r"[-\s]?").replace("'", "'?")
    return rf"(?<![\w']){escaped}(?![\w'])"


# --------------------------------------------------------------------------- evaluation context


@dataclass(frozen=True)
class Evidence:
    source: str  # e.g. "entity SYMPTOM", "text", "slot severity"
    value: str

    def describe(self) -> str:
        return f"{self.source} '{self.value}'"


@dataclass(frozen=True)
class _Entity:
    type: str
    text: str
    norm: str
    assertion: str
    attributes: Mapping[str, Any]


@dataclass
class _Context:
    texts: tuple[str, ...]  # normalised, oldest first
    entities: tuple[_Entity, ...]
    blocked: tuple[str, ...]  # normalised texts of entities the extractor says the patient lacks
    slots: dict[str, str | None]
    pending: str | None


_ENTITY_KEYS = frozenset({"type", "text", "assertion", "attributes", "start", "end", "score"})


def _infer_assertion(norm: str, texts: Sequence[str]) -> str:
    # Until the extractor reports assertions, a mention that only ever appears negated is absent.
    pattern = re.compile(_term_regex(norm))
    hits = [is_negated(text, m.start()) for text in texts for m in pattern.finditer(text)]
    return "absent" if hits and all(hits) else "present"


def _read_entity(item: Any, texts: Sequence[str]) -> _Entity | None:
    if not isinstance(item, Mapping):
        return None
    text = item.get("text")
    if not isinstance(text, str) or not normalise(text):
        return None
    attributes: dict[str, Any] = {}
    if isinstance(item.get("attributes"), Mapping):
        attributes.update(item["attributes"])
    # Entity.to_dict() flattens attributes into the item itself.
    attributes.update({k: v for k, v in item.items() if k not in _ENTITY_KEYS and isinstance(k, str)})
    assertion = item.get("assertion", attributes.get("assertion"))
    norm = normalise(text)
    if not isinstance(assertion, str) or not assertion.strip():
        assertion = _infer_assertion(norm, texts)
    assertion = assertion.strip().lower()
    if assertion not in ASSERTIONS:
        assertion = "present"  # unknown labels must not hide a red flag
    return _Entity(str(item.get("type", "")).upper(), text.strip(), norm, assertion, attributes)


# --------------------------------------------------------------------------- conditions


class Condition(Protocol):
    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        """None when not satisfied; otherwise the evidence (possibly empty)."""


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        evidence: list[Evidence] = []
        for part in self.parts:
            found = part.evaluate(ctx)
            if found is None:
                return None
            evidence.extend(found)
        return evidence


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        results = [found for part in self.parts if (found := part.evaluate(ctx)) is not None]
        return None if not results else [e for found in results for e in found]


@dataclass(frozen=True)
class Not:
    part: Condition

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        return [] if self.part.evaluate(ctx) is None else None


@dataclass(frozen=True)
class EntityMatch:
    types: frozenset[str] | None
    pattern: re.Pattern[str] | None
    attributes: tuple[tuple[str, re.Pattern[str]], ...]
    assertions: frozenset[str]
    exclude_slot: str | None
    limit: int | None

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        excluded = normalise(ctx.slots.get(self.exclude_slot) or "") if self.exclude_slot else ""
        evidence = []
        for ent in ctx.entities:
            if self.types is not None and ent.type not in self.types:
                continue
            if ent.assertion not in self.assertions:
                continue
            if self.pattern is not None and not self.pattern.search(ent.norm):
                continue
            if any(not pat.search(normalise(str(ent.attributes.get(k, "")))) for k, pat in self.attributes):
                continue
            if excluded and ent.norm in excluded:
                continue
            evidence.append(Evidence(f"entity {ent.type}", ent.text))
        if self.limit is not None:
            evidence = evidence[: self.limit]
        return evidence or None


@dataclass(frozen=True)
class TextMatch:
    pattern: re.Pattern[str]
    latest_only: bool
    negation: bool

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        texts = ctx.texts[-1:] if self.latest_only else ctx.texts
        evidence = []
        for text in reversed(texts):  # newest first: the latest answer is the best slot value
            for m in self.pattern.finditer(text):
                phrase = m.group(0).strip()
                if not phrase or (self.negation and is_negated(text, m.start())):
                    continue
                # The extractor saw this mention and judged it absent/family/hypothetical.
                if any(phrase in b or b in phrase for b in ctx.blocked):
                    continue
                evidence.append(Evidence("text", phrase))
        return evidence or None


@dataclass(frozen=True)
class Mention:
    entity: EntityMatch
    text: TextMatch

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        return self.entity.evaluate(ctx) or self.text.evaluate(ctx)


@dataclass(frozen=True)
class SlotMatch:
    name: str
    pattern: re.Pattern[str] | None
    negation: bool

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        value = ctx.slots.get(self.name)
        if value is None:
            return None
        text = normalise(value)
        if self.pattern is None:
            return [Evidence(f"slot {self.name}", value)]
        for m in self.pattern.finditer(text):
            if not (self.negation and is_negated(text, m.start())):
                return [Evidence(f"slot {self.name}", value)]
        return None


@dataclass(frozen=True)
class Pending:
    slot: str

    def evaluate(self, ctx: _Context) -> list[Evidence] | None:
        return [] if ctx.pending == self.slot else None


# --------------------------------------------------------------------------- rules and parsing


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    description: str
    when: Condition | None = field(default=None, repr=False)
    urgency: str | None = None
    advice: str | None = None
    slot: str | None = None
    text: str | None = None  # question text
    label: str | None = None  # slot name as shown in the summary
    empty: bool = False
    slots: frozenset[str] | None = None  # none_answer: slots it may empty (None = any)
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the JSON


_RULE_SCHEMA: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required keys, optional keys)
    "slot": (frozenset({"slot", "when"}), frozenset({"empty"})),
    "none_answer": (frozenset({"when"}), frozenset({"slots"})),
    "red_flag": (frozenset({"when", "urgency", "advice"}), frozenset()),
    "question": (frozenset({"slot", "text", "label"}), frozenset()),
    "closing": (frozenset({"urgency"}), frozenset({"when"})),
}
_COMMON_KEYS = frozenset({"id", "kind", "description"})
_TOP_KEYS = frozenset({"version", "description", "stop_questions_at", "urgency_advice", "rules"})
_CONDITION_KEYS: dict[str, frozenset[str]] = {
    "entity": frozenset({"types", "terms", "regex", "attributes", "assertions", "exclude_slot", "limit"}),
    "text": frozenset({"terms", "regex", "latest_only", "negation"}),
    "mention": frozenset({"types", "terms", "regex"}),
    "slot": frozenset({"name", "terms", "regex", "negation"}),
}


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"triage rules: {where}: {message}")


def _check_keys(where: str, data: Any, allowed: frozenset[str], required: frozenset[str] = frozenset()) -> None:
    if not isinstance(data, Mapping):
        raise _fail(where, f"expected an object, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = required - set(data)
    if missing:
        raise _fail(where, f"missing key(s) {sorted(missing)}")


def _str_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, "expected a non-empty list of non-empty strings")
    return value


def _text_str(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "expected a non-empty string")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "expected true or false")
    return value


def _slot_name(where: str, value: Any) -> str:
    if value not in SLOTS:
        raise _fail(where, f"unknown slot {value!r}; expected one of {list(SLOTS)}")
    return value


def _urgency(where: str, value: Any) -> str:
    if value not in URGENCY_LEVELS:
        raise _fail(where, f"bad urgency {value!r}; expected one of {list(URGENCY_LEVELS)}")
    return value


def _compile(where: str, spec: Mapping[str, Any], required: bool) -> re.Pattern[str] | None:
    alternatives = []
    if "terms" in spec:
        alternatives += [_term_regex(t) for t in _str_list(f"{where}.terms", spec["terms"])]
    if "regex" in spec:
        for pattern in _str_list(f"{where}.regex", spec["regex"]):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _fail(f"{where}.regex", f"invalid regular expression {pattern!r}: {exc}") from None
            alternatives.append(pattern)
    if not alternatives:
        if required:
            raise _fail(where, "needs 'terms' or 'regex'")
        return None
    # One alternation so the leftmost phrase wins ("not severe" before "severe").
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def _entity_match(where: str, spec: Mapping[str, Any]) -> EntityMatch:
    types = None
    if "types" in spec:
        types = frozenset(t.upper() for t in _str_list(f"{where}.types", spec["types"]))
    attributes = []
    if "attributes" in spec:
        attrs = spec["attributes"]
        if not isinstance(attrs, Mapping) or not attrs:
            raise _fail(f"{where}.attributes", "expected a non-empty object of attribute -> terms")
        for key, terms in attrs.items():
            pattern = re.compile("|".join(_term_regex(t) for t in _str_list(f"{where}.attributes.{key}", terms)))
            attributes.append((key, pattern))
    assertions = frozenset(ASSERTIONS) - BLOCKED_ASSERTIONS
    if "assertions" in spec:
        assertions = frozenset(_str_list(f"{where}.assertions", spec["assertions"]))
        if unknown := assertions - set(ASSERTIONS):
            raise _fail(f"{where}.assertions", f"unknown assertion(s) {sorted(unknown)}")
    limit = spec.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _fail(f"{where}.limit", "expected a positive integer")
    exclude = _slot_name(f"{where}.exclude_slot", spec["exclude_slot"]) if "exclude_slot" in spec else None
    return EntityMatch(types, _compile(where, spec, required=False), tuple(attributes), assertions, exclude, limit)


def parse_condition(where: str, data: Any) -> Condition:
    if not isinstance(data, Mapping) or len(data) != 1:
        raise _fail(where, "a condition is an object with exactly one key")
    (op, arg), = data.items()
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise _fail(f"{where}.{op}", "expected a non-empty list of conditions")
        parts = tuple(parse_condition(f"{where}.{op}[{i}]", c) for i, c in enumerate(arg))
        return AllOf(parts) if op == "all" else AnyOf(parts)
    if op == "not":
        return Not(parse_condition(f"{where}.not", arg))
    if op == "pending":
        return Pending(_slot_name(f"{where}.pending", arg))
    if op not in _CONDITION_KEYS:
        raise _fail(where, f"unknown condition {op!r}; expected one of all, any, not, pending, {', '.join(_CONDITION_KEYS)}")
    here = f"{where}.{op}"
    _check_keys(here, arg, _CONDITION_KEYS[op], frozenset({"name"}) if op == "slot" else frozenset())
    if op == "entity":
        return _entity_match(here, arg)
    if op == "mention":
        pattern = _compile(here, arg, required=True)
        entity = _entity_match(here, arg)
        return Mention(entity, TextMatch(pattern, latest_only=False, negation=True))
    negation = _bool(f"{here}.negation", arg.get("negation", True))
    if op == "slot":
        return SlotMatch(_slot_name(f"{here}.name", arg["name"]), _compile(here, arg, required=False), negation)
    latest = _bool(f"{here}.latest_only", arg.get("latest_only", False))
    return TextMatch(_compile(here, arg, required=True), latest, negation)


def parse_rule(index: int, data: Any) -> Rule:
    where = f"rules[{index}]"
    if isinstance(data, Mapping) and isinstance(data.get("id"), str):
        where = f"rule {data['id']!r}"
    if not isinstance(data, Mapping):
        raise _fail(where, "expected an object")
    kind = data.get("kind")
    if kind not in _RULE_SCHEMA:
        raise _fail(where, f"unknown kind {kind!r}; expected one of {sorted(_RULE_SCHEMA)}")
    required, optional = _RULE_SCHEMA[kind]
    _check_keys(where, data, _COMMON_KEYS | required | optional, _COMMON_KEYS | required)
    rule_id = _text_str(f"{where}.id", data["id"])
    if not re.fullmatch(r"[a-z][a-z0-9_]*", rule_id):
        raise _fail(where, "ids are lowercase letters, digits and underscores")
    slots = None
    if "slots" in data:
        slots = frozenset(_slot_name(f"{where}.slots", s) for s in _str_list(f"{where}.slots", data["slots"]))
    return Rule(
        id=rule_id,
        kind=kind,
        description=_text_str(f"{where}.description", data["description"]),
        when=parse_condition(f"{where}.when", data["when"]) if "when" in data else None,
        urgency=_urgency(f"{where}.urgency", data["urgency"]) if "urgency" in data else None,
        advice=_text_str(f"{where}.advice", data["advice"]) if "advice" in data else None,
        slot=_slot_name(f"{where}.slot", data["slot"]) if "slot" in data else None,
        text=_text_str(f"{where}.text", data["text"]) if "text" in data else None,
        label=_text_str(f"{where}.label", data["label"]) if "label" in data else None,
        empty=_bool(f"{where}.empty", data.get("empty", False)),
        slots=slots,
        source=data,
    )


# --------------------------------------------------------------------------- engine


def _reason(rule: Rule, evidence: Sequence[Evidence]) -> str:
    described = list(dict.fromkeys(e.describe() for e in evidence))
    if not described:
        return rule.description
    return f"{rule.description} (evidence: {', '.join(described)})"


def _slot_value(evidence: Sequence[Evidence]) -> str:
    return ", ".join(dict.fromkeys(e.value for e in evidence))


class TriageEngine:
    def __init__(self, rules: Sequence[Rule], *, stop_questions_at: str, urgency_advice: Mapping[str, str]):
        self._rules = tuple(rules)
        self.stop_questions_at = stop_questions_at
        self.urgency_advice = dict(urgency_advice)
        self._by_kind = {kind: [r for r in self._rules if r.kind == kind] for kind in _RULE_SCHEMA}

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    @classmethod
    def from_dict(cls, data: Any) -> TriageEngine:
        _check_keys("top level", data, _TOP_KEYS, frozenset({"rules", "urgency_advice", "stop_questions_at"}))
        if not isinstance(data["rules"], list) or not data["rules"]:
            raise _fail("rules", "expected a non-empty list of rules")
        rules = [parse_rule(i, r) for i, r in enumerate(data["rules"])]
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise _fail(f"rule {rule.id!r}", "duplicate id")
            seen.add(rule.id)
        asked = [r.slot for r in rules if r.kind == "question"]
        if sorted(asked) != sorted(SLOTS):
            raise _fail("rules", f"need exactly one question rule per slot {list(SLOTS)}; got {asked}")
        if not any(r.kind == "closing" and r.when is None for r in rules):
            raise _fail("rules", "need a fallback closing rule (a closing rule without 'when')")
        advice = data["urgency_advice"]
        _check_keys("urgency_advice", advice, frozenset(URGENCY_LEVELS), frozenset(URGENCY_LEVELS))
        for level, text in advice.items():
            _text_str(f"urgency_advice.{level}", text)
        stop = _urgency("stop_questions_at", data["stop_questions_at"])
        return cls(rules, stop_questions_at=stop, urgency_advice=advice)

    @classmethod
    def from_file(cls, path: str | Path) -> TriageEngine:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"triage rules: {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def default(cls) -> TriageEngine:
        return _default_engine()

    # ----------------------------------------------------------------------- decide

    def decide(self, inp: TriageInput) -> TriageDecision:
        if inp.urgency is not None and inp.urgency not in URGENCY_LEVELS:
            raise ValueError(f"unknown urgency {inp.urgency!r}; expected one of {list(URGENCY_LEVELS)} or None")
        texts = tuple(normalise(t) for t in inp.patient_texts if isinstance(t, str))
        entities = tuple(e for item in inp.entities if (e := _read_entity(item, texts)) is not None)
        ctx = _Context(
            texts=texts,
            entities=entities,
            blocked=tuple(e.norm for e in entities if e.assertion in BLOCKED_ASSERTIONS),
            slots=dict(inp.filled_slots),
            pending=inp.pending_slot,
        )
        fired: list[FiredRule] = []
        self._fill_slots(ctx, fired)

        urgency = inp.urgency
        advice: str | None = None
        advice_level: str | None = None
        for rule in self._by_kind["red_flag"]:
            evidence = rule.when.evaluate(ctx) if rule.when else None
            if evidence is None:
                continue
            fired.append(FiredRule(rule.id, _reason(rule, evidence), rule.urgency))
            urgency = more_urgent(urgency, rule.urgency)
            if advice_level is None or urgency_rank(rule.urgency) < urgency_rank(advice_level):
                advice, advice_level = rule.advice, rule.urgency

        question = None
        asked = set(inp.asked_slots) | ({inp.pending_slot} if inp.pending_slot else set())
        stop = urgency is not None and urgency_rank(urgency) <= urgency_rank(self.stop_questions_at)
        if not stop:
            # Never ask twice: an unanswered question is given up on rather than repeated.
            for rule in self._by_kind["question"]:
                if rule.slot not in ctx.slots and rule.slot not in asked:
                    question = Question(rule.slot, rule.text or "", rule.id)
                    fired.append(FiredRule(rule.id, f"{rule.description} ({rule.label} not known yet)", None))
                    break

        summary = None
        complete = question is None
        if complete:
            if not stop:  # when a red flag stopped the questions, it alone sets the urgency
                for closing in self._by_kind["closing"]:  # a fallback without `when` always exists (validated)
                    evidence = [] if closing.when is None else closing.when.evaluate(ctx)
                    if evidence is not None:
                        break
                fired.append(FiredRule(closing.id, _reason(closing, evidence or []), closing.urgency))
                urgency = more_urgent(urgency, closing.urgency)
            assert urgency is not None
            summary = self._summary(ctx.slots, urgency, advice if advice_level == urgency else None)

        return TriageDecision(
            urgency=urgency,
            filled_slots=ctx.slots,
            question=question,
            fired=tuple(fired),
            advice=advice,
            summary=summary,
            complete=complete,
        )

    def _fill_slots(self, ctx: _Context, fired: list[FiredRule]) -> None:
        decided: set[str] = set()
        for rule in self._by_kind["slot"]:
            slot = rule.slot
            assert slot is not None and rule.when is not None
            # A real value is never overwritten; an explicit "none" yields to later evidence
            # ("no medications" ... "oh, I do take ibuprofen").
            if slot in decided or ctx.slots.get(slot) is not None:
                continue
            evidence = rule.when.evaluate(ctx)
            if evidence is None:
                continue
            decided.add(slot)
            value = None if rule.empty else _slot_value(evidence)
            if slot in ctx.slots and value is None:
                continue  # already explicitly empty; nothing new
            ctx.slots[slot] = value
            fired.append(FiredRule(rule.id, _reason(rule, evidence), None))

        pending = ctx.pending
        if pending in SLOTS and pending not in ctx.slots and ctx.texts:
            for rule in self._by_kind["none_answer"]:
                if rule.slots is not None and pending not in rule.slots:
                    continue
                evidence = rule.when.evaluate(ctx) if rule.when else None
                if evidence is not None:
                    ctx.slots[pending] = None
                    fired.append(FiredRule(rule.id, f"{_reason(rule, evidence)}; {pending} recorded as none", None))
                    break

    def _summary(self, slots: Mapping[str, str | None], urgency: str, red_flag_advice: str | None) -> str:
        parts = []
        for rule in self._by_kind["question"]:
            if rule.slot in slots:
                value = slots[rule.slot]
                parts.append(f"{rule.label}: {value if value is not None else 'none'}")
            else:
                parts.append(f"{rule.label}: not provided")
        advice = red_flag_advice or self.urgency_advice[urgency]
        return f"Summary: {'; '.join(parts)}. Urgency: {URGENCY_LABELS[urgency]}. {advice}"


@functools.lru_cache(maxsize=1)
def _default_engine() -> TriageEngine:
    # Engines are immutable, so one shared instance is safe across threads.
    return TriageEngine.from_file(RULES_PATH)
