"""A differential over DDXPlus's 49 pathologies, the next question that best separates them, and the
urgency their severities imply.

Source: DDXPlus (Fansi Tchango et al., "DDXPlus: A New Dataset For Automatic Medical Diagnosis", NeurIPS 2022
Datasets and Benchmarks; CC-BY 4.0), read at run time from `DDXPLUS_DIR` (the shared data folder; never copied
into the project). The pathologies' severity (1 most severe ... 5), ICD-10 codes and the evidences with the
questions a doctor asks come from its knowledge base; P(evidence | pathology) and the pathologies' frequencies are estimated from the dev
half of its test patients (`patients_split`), smoothed towards the knowledge base's lists: an evidence the knowledge base
lists for a pathology has prior probability `LISTED_PRIOR`, any other `UNLISTED_PRIOR`.

Model: naive Bayes over the binary evidences (symptoms and antecedents), the knowledge base's grouped values of
DDXPlus's multiple-choice evidences (pain by site, E_55: "chest pain" is any of lower chest, upper chest, side of
the chest or breast; `groups`), age band and sex. Question selection: the unasked feature with the largest expected
information gain (bits) about the pathology.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from consult.vocabulary import URGENCY_LEVELS

LISTED_PRIOR = 0.5
UNLISTED_PRIOR = 0.01
GROUP_LISTED_PRIOR = 0.2  # a group of values of an evidence the pathology lists (E_55 pain site: any site)
PRIOR_WEIGHT = 2.0  # pseudo-patients behind the prior
AGE_BANDS = (0, 1, 5, 16, 30, 45, 60, 75, 200)  # years; band i is [AGE_BANDS[i], AGE_BANDS[i+1])
PATIENTS_FILE = "release_test_patients_sample2611.csv"
CHILD_AGE = 12  # years


def patients_split(row_index: int) -> str:
    """'dev' or 'test' for a row of the patients file (0-based, header excluded): the parity of the first byte
    of sha1(str(row_index)). Fixed, so choices made on dev never see test."""
    return "dev" if hashlib.sha1(str(row_index).encode()).digest()[0] % 2 == 0 else "test"


@dataclass(frozen=True)
class Patient:
    row: int
    age: float
    sex: str  # "female" | "male"
    pathology: str
    evidences: frozenset[str]  # "E_91", "E_55_@_V_123", "E_56_@_7"
    initial_evidence: str


def patients_read(directory: Path) -> list[Patient]:
    with (directory / PATIENTS_FILE).open(newline="", encoding="utf-8") as handle:
        return [
            Patient(
                row=i, age=float(row["AGE"]), sex="female" if row["SEX"] == "F" else "male",
                pathology=row["PATHOLOGY"], evidences=frozenset(ast.literal_eval(row["EVIDENCES"])),
                initial_evidence=row["INITIAL_EVIDENCE"],
            )
            for i, row in enumerate(csv.DictReader(handle))
        ]


def evidences_binary(evidences: frozenset[str] | set[str]) -> set[str]:
    """The yes/no evidences a patient has: the binary ones ("E_91") and the yes/no categorical ones with a
    value other than their "N" default V_10 ("E_204_@_V_1", travelled to West Africa -> "E_204")."""
    binary = set()
    for evidence in evidences:
        name, _, value = evidence.partition("_@_")
        if not value or value != "V_10":
            binary.add(name)
    return binary


@dataclass(frozen=True)
class Evidence:
    name: str
    question: str
    is_antecedent: bool


@dataclass(frozen=True)
class Ranked:
    pathology: str
    icd10: str
    severity: int
    probability: float


def _age_band(age: float) -> int:
    for i in range(len(AGE_BANDS) - 1):
        if AGE_BANDS[i] <= age < AGE_BANDS[i + 1]:
            return i
    return len(AGE_BANDS) - 2


class DifferentialModel:
    """Holds the pathologies (D = 49), the features (E = 208 binary evidences + one per group) and
    P(feature | pathology) [D, E].

    `groups` maps a feature name (the knowledge base's finding id, e.g. "chest_pain") to values of DDXPlus
    multiple-choice evidences ("E_55_@_V_29"); a patient has the feature when they have any of the values. Raises
    ValueError for a group value that is not an "E_xx_@_V_yy" of a multiple-choice evidence."""

    def __init__(self, *, conditions: Mapping[str, Mapping], evidences: Mapping[str, Mapping],
                 patients: Sequence[Patient], groups: Mapping[str, Collection[str]] | None = None) -> None:
        self.pathologies: list[str] = sorted(conditions)
        self.severity = np.array([int(conditions[p]["severity"]) for p in self.pathologies])  # [D]
        self.icd10 = [str(conditions[p]["icd10-id"]) for p in self.pathologies]
        # Yes/no evidences: type B, and the categorical ones whose values are N (V_10, the default) or not N.
        binary = sorted((n for n, e in evidences.items()
                         if e["data_type"] == "B" or (e["data_type"] == "C" and e["default_value"] == "V_10")),
                        key=lambda n: int(n[2:]))
        self.evidences = [
            Evidence(n, str(evidences[n]["question_en"]), bool(evidences[n]["is_antecedent"])) for n in binary
        ]
        self.groups = {name: frozenset(values) for name, values in (groups or {}).items()}
        for name, values in self.groups.items():
            for value in values:
                base, _, code = value.partition("_@_")
                if not code or evidences.get(base, {}).get("data_type") != "M" or code not in evidences[base].get(
                        "possible-values", []):
                    raise ValueError(f"group {name!r}: {value!r} is not a value of a DDXPlus multiple-choice evidence")
            # The group's question is the knowledge base's (the engine asks it in the finding's words).
            self.evidences.append(Evidence(name, "", False))
        self.evidence_index = {e.name: i for i, e in enumerate(self.evidences)}
        # A follow-up question's parent (DDXPlus `code_question`: "Is the lesion larger than 1 cm?" follows "Do you
        # have a rash?"; the pain sites follow "Do you have pain?").
        self.parent: dict[str, str] = {}
        for evidence in self.evidences:
            base = next(iter(self.groups[evidence.name])).partition("_@_")[0] if evidence.name in self.groups \
                else evidence.name
            parent = evidences[base].get("code_question") or base
            # A group inside a larger group follows it ("at the front or side of the head" follows "headache").
            wider = [g for g, values in self.groups.items()
                     if evidence.name in self.groups and g != evidence.name and self.groups[evidence.name] < values]
            if wider:
                parent = min(wider, key=lambda g: len(self.groups[g]))
            if parent != evidence.name and parent in self.evidence_index:
                self.parent[evidence.name] = parent
        d_count, e_count = len(self.pathologies), len(self.evidences)
        index = {p: i for i, p in enumerate(self.pathologies)}

        prior = np.full((d_count, e_count), UNLISTED_PRIOR)  # [D, E]
        for p, condition in conditions.items():
            listed = set(condition.get("symptoms", {})) | set(condition.get("antecedents", {}))
            for name in listed & set(self.evidence_index):
                prior[index[p], self.evidence_index[name]] = LISTED_PRIOR
            for name, values in self.groups.items():
                if any(v.partition("_@_")[0] in listed for v in values):
                    prior[index[p], self.evidence_index[name]] = GROUP_LISTED_PRIOR
        counts = np.zeros((d_count, e_count))  # [D, E]
        child_counts = np.zeros(e_count)  # [E] patients under CHILD_AGE with the feature
        n_patients = np.zeros(d_count)  # [D]
        age_counts = np.ones((d_count, len(AGE_BANDS) - 1))  # [D, A] Laplace
        sex_counts = np.ones((d_count, 2))  # [D, 2] (female, male)
        for patient in patients:
            d = index[patient.pathology]
            n_patients[d] += 1
            for name in evidences_binary(patient.evidences):
                if (e := self.evidence_index.get(name)) is not None:
                    counts[d, e] += 1
            for name, values in self.groups.items():
                if values & patient.evidences:
                    counts[d, self.evidence_index[name]] += 1
            if patient.age < CHILD_AGE:
                for name in evidences_binary(patient.evidences):
                    if (e := self.evidence_index.get(name)) is not None:
                        child_counts[e] += 1
            age_counts[d, _age_band(patient.age)] += 1
            sex_counts[d, 0 if patient.sex == "female" else 1] += 1
        self.likelihood = (counts + PRIOR_WEIGHT * prior) / (n_patients[:, None] + PRIOR_WEIGHT)  # [D, E]
        self.age_likelihood = age_counts / age_counts.sum(axis=1, keepdims=True)  # [D, A]
        self.sex_likelihood = sex_counts / sex_counts.sum(axis=1, keepdims=True)  # [D, 2]
        # [D] how often each pathology occurs among DDXPlus's patients (generated from its epidemiology), add-one
        # smoothed: a patient who answers "no" to everything is not sent to Ebola.
        self.prior = (n_patients + 1.0) / (n_patients.sum() + d_count)
        self.child_seen = child_counts > 0  # [E]

    @classmethod
    def from_directory(cls, directory: str | Path, *, split: str = "dev",
                       groups: Mapping[str, Collection[str]] | None = None) -> DifferentialModel:
        """Read DDXPlus from `directory`; estimate from the patients of `split` ('dev', or 'all')."""
        directory = Path(directory)
        conditions = json.loads((directory / "release_conditions.json").read_text(encoding="utf-8"))
        evidences = json.loads((directory / "release_evidences.json").read_text(encoding="utf-8"))
        patients = [p for p in patients_read(directory) if split == "all" or patients_split(p.row) == split]
        return cls(conditions=conditions, evidences=evidences, patients=patients, groups=groups)

    # ------------------------------------------------------------------- inference

    def posterior(self, observed: Mapping[str, bool], *, age: float | None = None, sex: str | None = None,
                  evidence_weight: float = 1.0) -> np.ndarray:
        """P(pathology | observed evidences, age, sex) [D]; evidences not in the model are ignored.

        `evidence_weight` (0-1] scales each evidence's log-likelihood: naive Bayes counts correlated answers
        ("no" to several related questions) as independent and grows overconfident; a weight below 1 tempers
        that (a tempered or "weighted" naive Bayes)."""
        log_post = np.log(self.prior)  # [D]
        for name, value in observed.items():
            if (e := self.evidence_index.get(name)) is not None:
                p = self.likelihood[:, e]  # [D]
                log_post = log_post + evidence_weight * np.log(p if value else 1.0 - p)
        if age is not None:
            log_post = log_post + np.log(self.age_likelihood[:, _age_band(age)])
        if sex in ("female", "male"):
            log_post = log_post + np.log(self.sex_likelihood[:, 0 if sex == "female" else 1])
        log_post -= log_post.max()
        post = np.exp(log_post)
        return post / post.sum()

    def ranked(self, posterior: np.ndarray, *, top: int = 5) -> list[Ranked]:
        order = np.argsort(-posterior)[:top]
        return [Ranked(self.pathologies[i], self.icd10[i], int(self.severity[i]), float(posterior[i])) for i in order]

    def unaskable(self, observed: Mapping[str, bool], *, age: float | None) -> set[str]:
        """Feature names not worth asking: follow-ups of a parent answered "no" (no rash: not its size), and for
        a child (age < CHILD_AGE years) the antecedents no child among the dev patients has (intravenous drugs,
        smoking, COPD: the patient trial asked a parent about their 2-year-old's)."""
        denied = {name for name, value in observed.items() if value is False}
        names = {child for child, parent in self.parent.items() if parent in denied}
        if age is not None and age < CHILD_AGE:
            names |= {e.name for e, seen in zip(self.evidences, self.child_seen) if e.is_antecedent and not seen}
        return names

    def next_question(self, posterior: np.ndarray, *, exclude: set[str]) -> tuple[Evidence, float] | None:
        """The evidence not in `exclude` with the largest expected information gain (bits) about the
        pathology, and that gain; None when every evidence is excluded."""
        likelihood = self.likelihood  # [D, E]
        p_yes = posterior @ likelihood  # [E]
        post_yes = posterior[:, None] * likelihood / np.maximum(p_yes, 1e-12)  # [D, E]
        post_no = posterior[:, None] * (1.0 - likelihood) / np.maximum(1.0 - p_yes, 1e-12)  # [D, E]
        gain = _entropy(posterior[:, None]) - (p_yes * _entropy(post_yes) + (1.0 - p_yes) * _entropy(post_no))  # [E]
        for e in np.argsort(-gain):
            if self.evidences[e].name not in exclude:
                return self.evidences[e], float(gain[e])
        return None

    def explaining(self, observed: Mapping[str, bool], *, support: float) -> np.ndarray:
        """[D] bool: the pathologies under which some present, specific evidence of `observed` has probability
        >= `support`. An evidence at least half the pathologies have at that probability (E_53, "pain somewhere")
        is not specific and explains nothing. All True when `support` is 0, or when nothing specific is present.

        "Some", not "every": a patient's second, unrelated finding (a runny nose beside chest pain) must not
        discount the pathology that explains the first."""
        if support <= 0:
            return np.ones(len(self.pathologies), dtype=bool)
        present = [self.evidence_index[n] for n, value in observed.items() if value and n in self.evidence_index]
        supported = self.likelihood[:, present] >= support  # [D, P]
        specific = supported.sum(axis=0) < len(self.pathologies) / 2  # [P]
        if not specific.any():
            return np.ones(len(self.pathologies), dtype=bool)
        return supported[:, specific].any(axis=1)  # [D]

    def severity_urgency(self, posterior: np.ndarray, thresholds: Sequence[float],
                         counted: np.ndarray | None = None) -> str:
        """The most urgent level k (severity 1 -> call an ambulance ... 5 -> self-care) whose cumulative
        probability P(severity <= k) reaches thresholds[k-1]; thresholds has four entries (levels 1-4).
        `counted` [D] bool limits the sum to those pathologies (`explaining`): a severe pathology that explains
        nothing the patient has is no reason to send them to hospital."""
        if counted is not None:
            posterior = np.where(counted, posterior, 0.0)  # [D]
        for k, threshold in enumerate(thresholds, start=1):
            if float(posterior[self.severity <= k].sum()) >= threshold:
                return URGENCY_LEVELS[k - 1]
        return URGENCY_LEVELS[4]


def _entropy(distributions: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each column of `distributions` [K, N] -> [N]."""
    return -(distributions * np.log2(np.maximum(distributions, 1e-12))).sum(axis=0)
