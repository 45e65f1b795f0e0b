"""Mention -> code dictionaries learned from a corpus's training annotations.

Corpora such as BC5CDR and NCBI-disease link every mention to a MeSH (or OMIM) id, following their own
conventions (BC5CDR codes "dyskinesia" after a drug as "Dyskinesia, Drug-Induced"). A deployment that has
its own copy of such a corpus can learn those conventions once, like training the model:

    python -m ner_engine.context build-dictionary bc5cdr ncbi-disease [--data-dir DIR] [--out DIR]

writes one TSV per corpus into `dictionaries_dir()` (`NER_CONTEXT_DICTIONARIES`, else `var/context_dictionaries/`
next to the package, which git ignores), from the train and dev splits only. The normaliser adds every
dictionary it finds there to the vocabularies it builds (`Normaliser(dictionaries=...)` chooses others or
none). The files hold corpus-derived data: never commit them.

File format: `#` comment lines (source, splits, counts), then `entity_type  system  code  term  count` rows.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ner_engine.context.terms import term_normalise

DICTIONARIES_ENV = "NER_CONTEXT_DICTIONARIES"
DEFAULT_DICTIONARIES_DIR = Path(__file__).resolve().parents[2] / "var" / "context_dictionaries"
SUFFIX = ".tsv"


@dataclass(frozen=True)
class CodedCorpus:
    """A registered corpus whose mentions carry ids, in PubTator form (`PMID<TAB>start<TAB>end<TAB>mention<TAB>
    label<TAB>ids`). `label_map` maps its labels to project entity types."""
    name: str
    files: dict[str, str]          # split -> path relative to the data directory
    label_map: dict[str, str]


_BC5CDR_FILES = {"train": "BC5CDR/pubtator/CDR_TrainingSet.PubTator.txt",
                 "dev": "BC5CDR/pubtator/CDR_DevelopmentSet.PubTator.txt",
                 "test": "BC5CDR/pubtator/CDR_TestSet.PubTator.txt"}
_NCBI_FILES = {"train": "NCBI-disease/original/NCBItrainset_corpus.txt",
               "dev": "NCBI-disease/original/NCBIdevelopset_corpus.txt",
               "test": "NCBI-disease/original/NCBItestset_corpus.txt"}
_NCBI_LABELS = {label: "DISEASE" for label in ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")}

# Names follow ner_engine.datasets.REGISTRY; the readers there keep spans only, so ids are read here.
CODED_CORPORA: dict[str, CodedCorpus] = {corpus.name: corpus for corpus in (
    CodedCorpus("bc5cdr", _BC5CDR_FILES, {"Disease": "DISEASE", "Chemical": "DRUG"}),
    CodedCorpus("bc5cdr-disease", _BC5CDR_FILES, {"Disease": "DISEASE"}),
    CodedCorpus("bc5cdr-chemical", _BC5CDR_FILES, {"Chemical": "DRUG"}),
    CodedCorpus("ncbi-disease", _NCBI_FILES, _NCBI_LABELS),
)}
TRAINING_SPLITS: tuple[str, ...] = ("train", "dev")

_ID_SEPARATORS = re.compile(r"[|+,;]")


@dataclass(frozen=True)
class CodedMention:
    document: str
    text: str
    entity_type: str
    ids: tuple[tuple[str, str], ...]   # (system, code) pairs, e.g. (("MeSH", "D003920"),)


@dataclass(frozen=True)
class DictionaryEntry:
    entity_type: str               # DISEASE | DRUG | SYMPTOM
    system: str                    # MeSH | OMIM
    code: str
    term: str
    count: int                     # training mentions with this (normalised) term and code


def code_parse(identifier: str) -> tuple[str, str] | None:
    """("MeSH", "D003920") for "D003920" or "MESH:D003920", ("OMIM", "OMIM:176670") for "OMIM:176670";
    None for "-1" or anything else."""
    identifier = identifier.strip()
    if identifier.upper().startswith("MESH:"):
        identifier = identifier[5:]
    if re.fullmatch(r"[CD]\d{6,9}", identifier):
        return "MeSH", identifier
    if re.fullmatch(r"OMIM:\d+", identifier, re.IGNORECASE):
        return "OMIM", identifier.upper()
    return None


def pubtator_coded_mentions(path: str | Path, label_map: dict[str, str]) -> Iterator[CodedMention]:
    """Mentions with ids from a PubTator file; labels outside `label_map` and relation lines are skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 6 or not fields[1].isdigit() or fields[4] not in label_map:
                continue
            ids = tuple(filter(None, (code_parse(i) for i in _ID_SEPARATORS.split(fields[5]))))
            yield CodedMention(fields[0], fields[3], label_map[fields[4]], ids)


def corpus_coded_mentions(corpus: str, splits: Sequence[str], data_dir: str | Path) -> list[CodedMention]:
    if corpus not in CODED_CORPORA:
        raise KeyError(f"no coded corpus {corpus!r}; known: {', '.join(sorted(CODED_CORPORA))}")
    spec = CODED_CORPORA[corpus]
    mentions: list[CodedMention] = []
    for split in splits:
        if split not in spec.files:
            raise ValueError(f"{corpus} has no split {split!r}")
        path = Path(data_dir) / spec.files[split]
        if not path.exists():
            raise FileNotFoundError(f"{path} not found (pass --data-dir or set NER_DATA_DIR)")
        mentions.extend(pubtator_coded_mentions(path, spec.label_map))
    return mentions


def dictionary_from_mentions(mentions: Iterable[CodedMention]) -> list[DictionaryEntry]:
    """One entry per (entity type, system, normalised term): the code most mentions with that term carry.
    Mentions with several ids (composite mentions such as "breast and ovarian cancer") teach nothing about
    one term and are left out; ties go to the code seen first."""
    votes: dict[tuple[str, str, str], Counter] = {}
    surfaces: dict[tuple[str, str, str], Counter] = {}
    for mention in mentions:
        if len(mention.ids) != 1:
            continue
        system, code = mention.ids[0]
        key = (mention.entity_type, system, term_normalise(mention.text))
        if not key[2]:
            continue
        votes.setdefault(key, Counter())[code] += 1
        surfaces.setdefault(key, Counter())[mention.text] += 1
    entries = []
    for key, counter in votes.items():
        code, count = counter.most_common(1)[0]
        entries.append(DictionaryEntry(key[0], key[1], code, surfaces[key].most_common(1)[0][0], count))
    entries.sort(key=lambda e: (e.entity_type, e.system, term_normalise(e.term)))
    return entries


def dictionary_build(corpus: str, *, data_dir: str | Path,
                     splits: Sequence[str] = TRAINING_SPLITS) -> list[DictionaryEntry]:
    """The mention -> code dictionary of a registered coded corpus's `splits` (train + dev by default), read
    from the corpora root `data_dir` (the command line defaults it to `ner_engine.datasets.DEFAULT_DATA_DIR`).
    Never pass "test": the dictionary would then be scored on what it memorised."""
    return dictionary_from_mentions(corpus_coded_mentions(corpus, splits, data_dir))


def dictionaries_dir() -> Path:
    return Path(os.environ.get(DICTIONARIES_ENV) or DEFAULT_DICTIONARIES_DIR)


def dictionary_save(entries: Sequence[DictionaryEntry], path: str | Path, *, source: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["# ner_engine.context mention -> code dictionary (corpus-derived: do not commit)",
             f"# source: {source or 'unspecified'}; created {created}; {len(entries)} terms",
             "# entity_type\tsystem\tcode\tterm\tcount"]
    for entry in entries:
        term = entry.term.replace("\t", " ").replace("\n", " ")
        lines.append(f"{entry.entity_type}\t{entry.system}\t{entry.code}\t{term}\t{entry.count}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def dictionary_load(path: str | Path) -> list[DictionaryEntry]:
    entries = []
    for line_number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        fields = raw.split("\t")
        if len(fields) != 5 or not fields[4].isdigit():
            raise ValueError(f"{path}:{line_number}: expected entity_type, system, code, term, count; got {raw!r}")
        entries.append(DictionaryEntry(fields[0], fields[1], fields[2], fields[3], int(fields[4])))
    return entries


def dictionaries_installed(directory: str | Path | None = None) -> list[DictionaryEntry]:
    """Every dictionary in `directory` (default `dictionaries_dir()`), in file-name order; [] when none."""
    directory = Path(directory) if directory is not None else dictionaries_dir()
    if not directory.is_dir():
        return []
    return [entry for path in sorted(directory.glob(f"*{SUFFIX}")) for entry in dictionary_load(path)]
