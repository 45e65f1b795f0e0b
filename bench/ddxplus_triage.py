"""DDXPlus triage benchmark: every synthetic test patient becomes a chat with the interview.

    .venv/bin/python bench/ddxplus_triage.py [--split dev|test|all] [--limit N] [--output bench/results/ddxplus_triage.json]
        [--settings JSON]  (TriageSettings fields changed for an ablation)

Each patient of DDXPlus's `release_test_patients_sample2611.csv` (CC-BY 4.0; split into dev and test halves by
`consult.triage.differential.patients_split`, the rule the differential's estimates also use: they come from the
dev half only) opens with a message rendered from its INITIAL_EVIDENCE in plain words (bench/data/ddxplus_phrases.json,
written independently of the knowledge base's synonyms), then answers the assistant's questions from its evidences
("no" for evidences it lacks; a finding the knowledge base defines by values of a multiple-choice evidence, such as
chest pain by the sites of E_55, is "yes" when the patient has any of them). Every message goes through the app's own path: `consult.extraction.entities_extract`
(the NER model and its clinical context) and `consult.interview.triage_engine_get()` (the interview engine the worker
runs), one turn at a time; extraction results are cached per distinct text.

Reported: urgency against the pathology's DDXPlus severity (1 -> call an ambulance, 2 -> emergency department,
3 -> within 24 hours, 4 -> next few days, 5 -> self-care): exact accuracy, under-triage (less urgent than expected)
overall and for severity 1-2, over-triage; questions asked (mean, p95); the true pathology in the differential at
top-1 and top-5.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from consult import extraction, interview  # noqa: E402
from consult.triage import TriageInput, Turn  # noqa: E402
from consult.triage.differential import evidences_binary, patients_read, patients_split  # noqa: E402
from consult.vocabulary import URGENCY_LEVELS, urgency_max, urgency_rank  # noqa: E402

PHRASES = ROOT / "bench" / "data" / "ddxplus_phrases.json"
MAX_TURNS = 40
CACHE_DIR = ROOT / "var" / "bench" / "ddxplus_extraction"


class SimulatedPatient:
    """Answers the assistant's questions from one DDXPlus patient's evidences."""

    def __init__(self, patient, phrases: dict, engine) -> None:
        self.patient = patient
        self.phrases = phrases
        self.engine = engine
        self.binary = evidences_binary(patient.evidences)
        self.told = {patient.initial_evidence}  # the symptoms this patient has said they have
        self.values: dict[str, list[str]] = {}
        for evidence in patient.evidences:
            if "_@_" in evidence:
                name, value = evidence.split("_@_")
                self.values.setdefault(name, []).append(value)

    def possible_texts(self) -> set[str]:
        """Every message this patient can send (extracted up front, in batches)."""
        texts = {self.statement(self.patient.initial_evidence, self.patient.row + k) for k in range(3)}
        texts |= {self.answer(q, 0) for q in ("site:pain", "general:demographics", "general:severity")}
        return texts | {"yes", "no", "a few days", "none", "no, nothing else"}

    def statement(self, evidence: str, variant: int) -> str:
        statements = self.phrases[evidence]["statements"]
        return statements[variant % len(statements)]

    def opening(self) -> str:
        return self.statement(self.patient.initial_evidence, self.patient.row)

    def _has(self, evidences) -> bool:
        """Any of the knowledge base's DDXPlus evidences of a finding: binary names ("E_91") or values of a
        multiple-choice evidence ("E_55_@_V_29", pain in the lower chest)."""
        return any(e in self.binary or e in self.patient.evidences for e in evidences)

    def answer(self, question_id: str, repeat: int) -> str:
        text = self._answer(question_id, repeat)
        kind, _, key = question_id.partition(":")
        if text == "yes" and kind in ("finding", "screen", "ddx"):
            ids = key.split("+") if kind == "screen" else [key]
            findings = [self.engine.knowledge.findings[f] for f in ids if f in self.engine.knowledge.findings]
            self.told |= {e for f in findings for e in f.ddxplus} | ({key} if kind == "ddx" else set())
        return text

    def volunteered(self) -> list[str]:
        """The symptoms (not antecedents) this patient has but has not said, that a closing "anything else?"
        brings out: at most two, in DDXPlus's evidence order."""
        symptoms = {e.name for e in self.engine.differential.evidences if not e.is_antecedent}
        untold = sorted((self.binary & symptoms) - self.told, key=lambda name: int(name[2:]))
        return [name for name in untold if self.phrases.get(name, {}).get("statements")][:2]

    def red_flags_held(self) -> list:
        """The knowledge base's red flags that hold on this patient's whole DDXPlus record (every finding answered as
        the simulated patient would answer it, with its age, sex and pain score): what an interview that asked every
        question would fire, whatever it asked."""
        present = {f.id for f in self.engine.knowledge.findings.values() if f.ddxplus and self._has(f.ddxplus)}
        intensity = self.values.get("E_56")
        score = int(intensity[0]) if intensity else None
        return [rule for rule in self.engine.knowledge.red_flags
                if rule.when.holds(present.__contains__, age=self.patient.age, sex=self.patient.sex, severity=score)]

    def _answer(self, question_id: str, repeat: int) -> str:
        kind, _, key = question_id.partition(":")
        if kind == "complaint":
            return self.statement(self.patient.initial_evidence, self.patient.row + 1 + repeat)
        if kind == "finding":
            return "yes" if self._has(self.engine.knowledge.findings[key].ddxplus) else "no"
        if kind == "screen":
            return "yes" if any(self._has(self.engine.knowledge.findings[f].ddxplus) for f in key.split("+")) else "no"
        if kind == "ddx":
            finding = self.engine.knowledge.findings.get(key)  # a finding defined by a group of values
            return "yes" if (self._has(finding.ddxplus) if finding else key in self.binary) else "no"
        if kind == "site":
            places = [self.phrases["E_55"]["values"][v] for v in self.values.get("E_55", []) if v != "V_123"]
            return " and ".join(places[:3]) if places else "I'm not sure"
        if key == "demographics":
            age = self.patient.age
            return f"under a year old, {self.patient.sex}" if age < 1 else f"I'm {age:g}, {self.patient.sex}"
        if key == "severity":
            intensity = self.values.get("E_56")
            return f"{intensity[0]}/10" if intensity else "it's mild"
        if key == "duration":
            return "a few days"
        if key == "pregnancy":
            return "no"
        if key == "anything_else":
            untold = self.volunteered()
            self.told |= set(untold)
            return ". Also, ".join(self.statement(e, self.patient.row) for e in untold) if untold else "no, nothing else"
        return "none"  # history (medicines, conditions, allergies): DDXPlus's antecedents are asked as their own questions


def _context_fingerprint() -> str:
    """Changes whenever ner_engine's clinical context stage (code, rules, vocabularies) changes: the cached
    extractions carry its assertions and codes."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "ner_engine" / "context").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".tsv", ".json", ".txt"):
            digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def expected_urgency(severity: int) -> str:
    return URGENCY_LEVELS[severity - 1]


def run_patient(patient, phrases, engine, extract) -> dict:
    simulated = SimulatedPatient(patient, phrases, engine)
    turns: list[Turn] = []
    asked: list[str] = []
    previous = None
    text, answered = simulated.opening(), None
    decision = None
    for _ in range(MAX_TURNS):
        turns.append(Turn(text=text, entities=tuple(extract(text)), answered=answered))
        decision = engine.decide(TriageInput(turns=tuple(turns), asked=tuple(asked), previous_urgency=previous))
        previous = decision.urgency if urgency_rank(decision.urgency) < urgency_rank(previous) else previous
        if decision.concluded or decision.question is None:
            break
        asked.append(decision.question.id)
        answered = decision.question.id
        text = simulated.answer(answered, asked.count(answered) - 1)
    expected = expected_urgency(int(engine.differential.severity[engine.differential.pathologies.index(patient.pathology)]))
    got = previous
    ranked = [r.pathology for r in decision.differential] if decision else []
    held = simulated.red_flags_held()
    return {
        "row": patient.row, "pathology": patient.pathology, "expected": expected, "urgency": got,
        "concluded": bool(decision and decision.concluded), "questions": len(asked),
        "top1": ranked[:1] == [patient.pathology], "top5": patient.pathology in ranked[:5],
        "red_flags": list(decision.red_flags) if decision else [], "asked": asked,
        # The most urgent level a red flag reaches on the patient's whole record (None: none holds).
        "red_flag_level": urgency_max(*(rule.urgency for rule in held)),
        "red_flags_held": [rule.id for rule in held],
    }


def summarise(results: list[dict]) -> dict:
    n = len(results)
    exact = sum(r["urgency"] == r["expected"] for r in results)
    under = [r for r in results if urgency_rank(r["urgency"]) > urgency_rank(r["expected"])]
    over = [r for r in results if urgency_rank(r["urgency"]) < urgency_rank(r["expected"])]
    severe = [r for r in results if r["expected"] in URGENCY_LEVELS[:2]]
    severe_under = [r for r in severe if urgency_rank(r["urgency"]) > urgency_rank(r["expected"])]
    questions = sorted(r["questions"] for r in results)
    confusion = Counter((r["expected"], r["urgency"]) for r in results)
    # What sent the over-triaged patients higher: the first red flag that fired, with the true pathology.
    over_flags = Counter(f"{r['red_flags'][0]} ({r['pathology']})" for r in over if r["red_flags"])
    # The knowledge base's red flags (NHS and NICE guidance) applied to each patient's whole DDXPlus record: where
    # one demands a more urgent level than the pathology's DDXPlus severity, no interview that follows the guidance
    # and learns the whole record can agree with DDXPlus, so 1 minus their share bounds its exact urgency.
    guided_over = [r for r in results if urgency_rank(r["red_flag_level"]) < urgency_rank(r["expected"])]
    levels = {rule.id: rule.urgency for rule in interview.triage_engine_get().knowledge.red_flags}
    return {
        "patients": n,
        "exact_urgency": round(exact / n, 4),
        "under_triage": round(len(under) / n, 4),
        "over_triage": round(len(over) / n, 4),
        "over_triaged_with_red_flag": f"{sum(over_flags.values())} of {len(over)}",
        "over_triage_red_flags": dict(over_flags.most_common(12)),
        "severity_1_2_patients": len(severe),
        "severity_1_2_under_triage": round(len(severe_under) / len(severe), 4) if severe else None,
        "severity_1_2_under_triaged": [(r["row"], r["pathology"], r["urgency"]) for r in severe_under][:50],
        # Whether the patient was told to act now (ambulance or emergency department) when, and only when, the
        # pathology is severity 1-2: the decision that matters most, apart from which of the two.
        "act_now_sensitivity": round(sum(r["urgency"] in URGENCY_LEVELS[:2] for r in severe) / len(severe), 4)
        if severe else None,
        "act_now_specificity": round(sum(r["urgency"] not in URGENCY_LEVELS[:2] for r in results if r not in severe)
                                     / max(1, n - len(severe)), 4),
        "questions_mean": round(statistics.mean(questions), 2),
        "questions_p95": questions[min(n - 1, int(round(0.95 * (n - 1))))],
        "concluded": round(sum(r["concluded"] for r in results) / n, 4),
        "differential_top1": round(sum(r["top1"] for r in results) / n, 4),
        "differential_top5": round(sum(r["top5"] for r in results) / n, 4),
        "red_flag_above_severity": len(guided_over),
        "exact_urgency_ceiling_under_red_flags": round(1 - len(guided_over) / n, 4),
        "red_flags_above_severity": dict(Counter(
            f"{next(f for f in r['red_flags_held'] if levels[f] == r['red_flag_level'])} ({r['pathology']})"
            for r in guided_over).most_common(12)),
        "confusion_expected_vs_urgency": {f"{e} -> {u}": c for (e, u), c in sorted(confusion.items(), key=str)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--limit", type=int, default=0, help="first N patients of the split (0: all)")
    parser.add_argument("--output", type=Path, help="write the summary and per-patient results here (JSON)")
    parser.add_argument("--settings", type=json.loads, default={},
                        help='TriageSettings fields to change, as JSON (ablations), e.g. \'{"evidence_weight": 1.0}\'')
    args = parser.parse_args()

    directory = settings.DDXPLUS_DIR
    phrases = json.loads(PHRASES.read_text(encoding="utf-8"))["evidences"]
    engine = interview.triage_engine_get()
    if args.settings:
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in args.settings.items()}
        engine.settings = dataclasses.replace(engine.settings, **changes)
    if engine.differential is None:
        print(f"DDXPlus not found at {directory}", file=sys.stderr)
        return 2
    patients = [p for p in patients_read(directory) if args.split == "all" or patients_split(p.row) == args.split]
    if args.limit:
        patients = patients[: args.limit]

    # Extraction results per distinct text, kept between runs for the same model and templates.
    extractor = extraction.extractor_get()
    cache_file = CACHE_DIR / (f"{extractor.model_version}-{extractor.template_version}-{_context_fingerprint()}.json"
                              .replace("/", "_"))
    cache: dict[str, list[dict]] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    wanted = sorted({t for p in patients for t in SimulatedPatient(p, phrases, engine).possible_texts()} - set(cache))
    for start in range(0, len(wanted), 32):
        batch = wanted[start:start + 32]
        for text, result in zip(batch, extraction.texts_extract(texts=batch)):
            cache[text] = result.entities
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache))

    def extract(text: str) -> list[dict]:
        if text not in cache:
            cache[text] = extraction.entities_extract(text=text).entities
        return cache[text]

    started = time.perf_counter()
    results = [run_patient(p, phrases, engine, extract) for p in patients]
    cache_file.write_text(json.dumps(cache))
    summary = summarise(results)
    summary.update({
        "split": args.split, "seconds": round(time.perf_counter() - started, 1), "distinct_texts_extracted": len(cache),
        "model": settings.NER_MODEL, "knowledge_base": engine.knowledge.version, "settings": vars(engine.settings),
    })
    print(json.dumps({k: v for k, v in summary.items() if k != "severity_1_2_under_triaged"}, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"summary": summary, "patients": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
