"""Corpus readers. Every format becomes `Document`s: text plus character-offset spans in the corpus's own labels.

Label mapping to the project's entity types happens in `datasets.py`, not here, so readers stay format-only.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ner_engine.types import Document, Span

logger = logging.getLogger(__name__)


def conll_documents(path: str | Path, *, separator: str | None = None, doc_prefix: str = "") -> list[Document]:
    """Read token-per-line IOB2 (`token<sep>tag`, blank line between sequences).

    Tokens are joined with single spaces, so character spans are equivalent to the token spans of the source.
    Stray `I-X` tags that do not continue an `X` entity open a new entity (the usual conlleval convention).
    """
    documents: list[Document] = []
    tokens: list[tuple[str, str]] = []

    def flush() -> None:
        if tokens:
            documents.append(_iob_document(f"{doc_prefix}{len(documents)}", tokens))
            tokens.clear()

    with open(path, encoding="utf-8") as handle:
        for line_number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip() or line.startswith("-DOCSTART-"):
                flush()
                continue
            parts = line.split(separator) if separator else line.split()
            if len(parts) < 2:
                raise ValueError(f"{path}:{line_number}: expected 'token tag', got {line!r}")
            tokens.append((parts[0], parts[-1]))
    flush()
    return documents


def _iob_document(doc_id: str, tokens: list[tuple[str, str]]) -> Document:
    pieces: list[str] = []
    spans: list[Span] = []
    offset = 0
    open_label: str | None = None
    open_start = 0
    last_end = 0
    for index, (token, tag) in enumerate(tokens):
        if index:
            offset += 1  # the joining space
        start, end = offset, offset + len(token)
        pieces.append(token)
        offset = end
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and label == open_label
        if open_label is not None and not continues:
            spans.append(Span(open_start, last_end, open_label))
            open_label = None
        if prefix in ("B", "I") and not continues:
            open_label, open_start = label, start
        elif prefix not in ("B", "I", "O"):
            raise ValueError(f"{doc_id}: unknown IOB tag {tag!r}")
        last_end = end
    if open_label is not None:
        spans.append(Span(open_start, last_end, open_label))
    return Document(id=doc_id, text=" ".join(pieces), spans=spans)


def brat_document(txt_path: str | Path, *, ann_path: str | Path | None = None) -> Document:
    """Read one brat standoff pair. Discontinuous spans (`T1 Type 0 5;9 12`) are skipped and logged:
    joining them would create a span covering text that is not part of the mention."""
    txt_path = Path(txt_path)
    ann_path = Path(ann_path) if ann_path else txt_path.with_suffix(".ann")
    text = txt_path.read_text(encoding="utf-8")
    spans: list[Span] = []
    skipped = 0
    for line_number, line in enumerate(ann_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("T"):
            continue  # events, relations, attributes and notes are read by the attribute modules
        try:
            _, type_and_offsets, mention = line.split("\t", 2)
        except ValueError as error:
            raise ValueError(f"{ann_path}:{line_number}: malformed text-bound annotation {line!r}") from error
        label, _, offsets = type_and_offsets.partition(" ")
        if ";" in offsets:
            skipped += 1
            continue
        start, end = (int(value) for value in offsets.split())
        # Some .ann lines carry trailing whitespace after the mention; the offsets are what counts.
        if text[start:end].strip() != mention.strip():
            raise ValueError(f"{ann_path}:{line_number}: offsets {start}-{end} give {text[start:end]!r}, not {mention!r}")
        spans.append(Span(start, end, label))
    if skipped:
        logger.info("%s: skipped %d discontinuous span(s)", ann_path.name, skipped)
    return Document(id=txt_path.stem, text=text, spans=sorted(spans))


def brat_documents(directory: str | Path, *, ids: Iterable[str] | None = None) -> list[Document]:
    """Read every `.txt`/`.ann` pair in one directory, optionally only the given document ids."""
    directory = Path(directory)
    wanted = set(ids) if ids is not None else None
    paths = sorted(p for p in directory.glob("*.txt") if p.with_suffix(".ann").exists())
    return [brat_document(p) for p in paths if wanted is None or p.stem in wanted]


def cadec_documents(root: str | Path, *, annotation_dir: str = "original") -> list[Document]:
    """CADEC ships texts in `text/NAME.txt` and annotations in `original/NAME.ann` (ADR, Drug, Disease,
    Symptom, Finding). Users obtain CADEC under its own licence; nothing of it is bundled."""
    root = Path(root)
    documents = []
    for txt_path in sorted((root / "text").glob("*.txt")):
        ann_path = root / annotation_dir / f"{txt_path.stem}.ann"
        if ann_path.exists():
            documents.append(brat_document(txt_path, ann_path=ann_path))
    return documents


_PUBTATOR_TEXT = re.compile(r"^(?P<pmid>[^|\t]+)\|(?P<kind>[ta])\|(?P<text>.*)$")


def pubtator_documents(path: str | Path) -> list[Document]:
    """Read PubTator: `PMID|t|title`, `PMID|a|abstract`, then `PMID\\tstart\\tend\\tmention\\ttype[\\tid...]`.
    Offsets are over `title + " " + abstract`; relation lines (`PMID\\tCID\\t...`) are ignored."""
    return list(_pubtator_iter(Path(path)))


def _pubtator_iter(path: Path) -> Iterator[Document]:
    title = abstract = ""
    pmid: str | None = None
    spans: list[Span] = []

    def build() -> Document:
        text = f"{title} {abstract}" if abstract else title
        return Document(id=pmid or "", text=text, spans=sorted(spans))

    with open(path, encoding="utf-8") as handle:
        for line_number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                if pmid is not None:
                    yield build()
                title = abstract = ""
                pmid, spans = None, []
                continue
            match = _PUBTATOR_TEXT.match(line)
            if match:
                pmid = match["pmid"]
                if match["kind"] == "t":
                    title = match["text"]
                else:
                    abstract = match["text"]
                continue
            fields = line.split("\t")
            if len(fields) >= 5 and fields[1].isdigit():
                start, end = int(fields[1]), int(fields[2])
                text = f"{title} {abstract}"
                if text[start:end] != fields[3]:
                    raise ValueError(f"{path}:{line_number}: offsets give {text[start:end]!r}, not {fields[3]!r}")
                spans.append(Span(start, end, fields[4]))
            elif len(fields) >= 2 and not fields[1].isdigit():
                continue  # relation line
            else:
                raise ValueError(f"{path}:{line_number}: unrecognised PubTator line {line!r}")
    if pmid is not None:
        yield build()
