"""Build, validate and describe the patient-message NER corpus (`bench/data/patient_ner/`).

The corpus is written by hand in `messages.src.txt`, one message per line, spans marked inline as
`[text|TYPE]` (the markup of `ner_engine/ANNOTATION.md`); `## category` lines open a category. This script
converts it to JSON lines with exact character offsets:

    {"id": "pn-clause-004", "category": "clause", "split": "dev", "text": "...",
     "types": ["DISEASE", "DRUG", "DURATION", "SEVERITY", "SYMPTOM"],
     "spans": [{"start": 3, "end": 15, "type": "SYMPTOM"}, ...]}

Ids are `pn-<category>-<index within the category, from 1, 3 digits>`. The split is fixed by the id:
**dev when the last hex digit of sha1(id) is even, test otherwise** (`split_of`). Choices are made on dev only.

Commands (from the repository root):

    python bench/patient_ner_check.py            # validate source, jsonl files and guideline; print counts
    python bench/patient_ner_check.py --write    # rebuild messages.jsonl, dev.jsonl and test.jsonl
    python bench/patient_ner_check.py --json OUT # also write the counts as JSON

Standard library only. Errors are raised as `ValueError` naming the source line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "bench" / "data" / "patient_ner"
SOURCE = CORPUS_DIR / "messages.src.txt"
GUIDELINE = ROOT / "ner_engine" / "ANNOTATION.md"
TYPES: tuple[str, ...] = ("DISEASE", "DRUG", "DURATION", "SEVERITY", "SYMPTOM")
# ANATOMY may appear in the guideline's wrong (✗) examples only: it is a type of ner_engine/types.py that this
# guideline does not annotate in patient messages.
GUIDELINE_TYPES: tuple[str, ...] = TYPES + ("ANATOMY",)
CATEGORIES: tuple[str, ...] = (
    "greeting", "answer", "clause", "site", "colloquial", "misspelling", "abbreviation", "drug", "habit",
    "family", "negation", "hypothetical", "diagnosis", "severity", "nonentity", "multi", "long",
)
_MARK = re.compile(r"\[([^\[\]|]+)\|([A-Z]+)\]")
_EDGE_PUNCT = ".,;:!?'\"()"


@dataclass
class Message:
    """One corpus message: `spans` are (start, end, type) character offsets into `text`, end exclusive."""

    id: str
    category: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    line: int = 0

    @property
    def split(self) -> str:
        return split_of(self.id)

    def to_json(self) -> dict:
        return {"id": self.id, "category": self.category, "split": self.split, "text": self.text,
                "types": list(TYPES),
                "spans": [{"start": s, "end": e, "type": t} for s, e, t in self.spans]}


def split_of(message_id: str) -> str:
    """'dev' when the last hex digit of sha1(id) is even, else 'test'."""
    return "dev" if int(hashlib.sha1(message_id.encode("utf-8")).hexdigest()[-1], 16) % 2 == 0 else "test"


def markup_parse(source: str, *, types: tuple[str, ...] = TYPES, where: str = "") -> tuple[str, list[tuple[int, int, str]]]:
    """`"I have [a cough|SYMPTOM]"` -> `("I have a cough", [(7, 14, "SYMPTOM")])`.

    Raises ValueError on a stray bracket or `|`, an unknown type, or a span with whitespace at an edge."""
    text_parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    position = 0
    length = 0
    for match in _MARK.finditer(source):
        before = source[position:match.start()]
        text_parts.append(before)
        length += len(before)
        mention, label = match.group(1), match.group(2)
        if label not in types:
            raise ValueError(f"{where}: unknown type {label!r} in {source!r}")
        if mention != mention.strip():
            raise ValueError(f"{where}: span {mention!r} has whitespace at an edge")
        spans.append((length, length + len(mention), label))
        text_parts.append(mention)
        length += len(mention)
        position = match.end()
    text_parts.append(source[position:])
    text = "".join(text_parts)
    if any(char in text for char in "[]|"):
        raise ValueError(f"{where}: stray markup character in {source!r}")
    return text, spans


def source_read(path: str | Path = SOURCE) -> list[Message]:
    """Messages of the markup source in file order, with their ids."""
    messages: list[Message] = []
    category: str | None = None
    counters: Counter = Counter()
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("## "):
            category = line[3:].strip()
            if category not in CATEGORIES:
                raise ValueError(f"{path}:{number}: unknown category {category!r}")
            continue
        if line.startswith("#"):
            continue
        if category is None:
            raise ValueError(f"{path}:{number}: message before any '## category' line")
        text, spans = markup_parse(line, where=f"{path}:{number}")
        counters[category] += 1
        messages.append(Message(f"pn-{category}-{counters[category]:03d}", category, text, spans, number))
    return messages


def message_problems(message: Message) -> list[str]:
    """What is wrong with one message's spans (empty when nothing): range, edges, word boundaries, overlaps."""
    problems = []
    text = message.text
    if text != text.strip() or not text:
        problems.append("text is empty or has whitespace at an edge")
    previous_end = -1
    for start, end, label in sorted(message.spans):
        mention = text[start:end]
        if not 0 <= start < end <= len(text):
            problems.append(f"span {start}-{end} outside the text")
            continue
        if label not in TYPES:
            problems.append(f"span {mention!r}: type {label!r} not in {TYPES}")
        if mention[0] in _EDGE_PUNCT or mention[-1] in _EDGE_PUNCT:
            problems.append(f"span {mention!r} starts or ends with punctuation")
        if (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum()):
            problems.append(f"span {mention!r} cuts a word")
        if start < previous_end:
            problems.append(f"span {mention!r} overlaps the previous span")
        previous_end = max(previous_end, end)
    return problems


def corpus_problems(messages: list[Message]) -> list[str]:
    """Corpus-level problems: per-message problems, duplicate ids, duplicate texts."""
    problems = [f"{m.id} (line {m.line}): {p}" for m in messages for p in message_problems(m)]
    ids = Counter(m.id for m in messages)
    problems += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    texts = Counter(m.text.lower() for m in messages)
    problems += [f"duplicate text {t!r}" for t, n in texts.items() if n > 1]
    return problems


@dataclass(frozen=True)
class GuidelineExample:
    """One `✓`/`✗` line of ANNOTATION.md: `correct` says which; `rule` is the id of the rule above it."""

    correct: bool
    rule: str
    text: str
    spans: tuple[tuple[int, int, str], ...]
    line: int


_RULE = re.compile(r"^\*\*([A-Z]\d+)\.")


def guideline_examples(path: str | Path = GUIDELINE) -> list[GuidelineExample]:
    """Every example line of the guideline, with the id of the rule it illustrates ("" before any rule)."""
    examples = []
    rule = ""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        heading = _RULE.match(line)
        if heading:
            rule = heading.group(1)
        if line.startswith(("✓ ", "✗ ")):
            text, spans = markup_parse(line[2:], types=GUIDELINE_TYPES, where=f"{path}:{number}")
            examples.append(GuidelineExample(line.startswith("✓"), rule, text, tuple(spans), number))
    return examples


def guideline_problems(messages: list[Message], examples: list[GuidelineExample]) -> list[str]:
    """A `✓` example must be a corpus message with exactly its spans; a `✗` example's text must be a corpus
    message holding none of its (wrong) spans, and must mark at least one span."""
    by_text = {m.text: m for m in messages}
    problems = []
    for example in examples:
        where = f"ANNOTATION.md:{example.line} ({example.rule or 'no rule'})"
        message = by_text.get(example.text)
        if message is None:
            problems.append(f"{where}: {example.text!r} is not a corpus message")
            continue
        gold = set(message.spans)
        if example.correct and gold != set(example.spans):
            problems.append(f"{where}: corpus {message.id} has {_show(message.text, gold)}, "
                            f"guideline gives {_show(message.text, example.spans)}")
        if not example.correct:
            if not example.spans:
                problems.append(f"{where}: a wrong example marks no span")
            clash = gold & set(example.spans)
            if clash:
                problems.append(f"{where}: corpus {message.id} holds the wrong span(s) {_show(message.text, clash)}")
    return problems


def _show(text: str, spans) -> list[str]:
    return [f"{text[s:e]}|{t}" for s, e, t in sorted(spans)]


def jsonl_read(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_write(messages: list[Message], directory: str | Path = CORPUS_DIR) -> None:
    """messages.jsonl (all), dev.jsonl and test.jsonl (the halves), in source order."""
    directory = Path(directory)
    for name, chosen in (("messages", messages), ("dev", [m for m in messages if m.split == "dev"]),
                         ("test", [m for m in messages if m.split == "test"])):
        with open(directory / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for message in chosen:
                handle.write(json.dumps(message.to_json(), ensure_ascii=False) + "\n")


def statistics(messages: list[Message]) -> dict:
    """Counts per split: messages, messages per category, spans per type, messages without spans, words."""
    result: dict = {}
    for split in ("dev", "test", "all"):
        chosen = [m for m in messages if split == "all" or m.split == split]
        result[split] = {
            "messages": len(chosen),
            "spans": sum(len(m.spans) for m in chosen),
            "messages_without_spans": sum(not m.spans for m in chosen),
            "words": sum(len(m.text.split()) for m in chosen),
            "categories": dict(sorted(Counter(m.category for m in chosen).items())),
            "types": dict(sorted(Counter(t for m in chosen for _, _, t in m.spans).items())),
        }
    return result


def _table(stats: dict) -> str:
    rows = ["| | dev | test | all |", "|---|---:|---:|---:|"]
    for key in ("messages", "spans", "messages_without_spans", "words"):
        rows.append(f"| {key.replace('_', ' ')} | " + " | ".join(str(stats[s][key]) for s in ("dev", "test", "all")) + " |")
    for group in ("categories", "types"):
        for name in sorted(stats["all"][group]):
            rows.append(f"| {group[:-1] if group == 'types' else 'category'} `{name}` | "
                        + " | ".join(str(stats[s][group].get(name, 0)) for s in ("dev", "test", "all")) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rebuild messages.jsonl, dev.jsonl, test.jsonl")
    parser.add_argument("--json", help="write the statistics here as JSON")
    args = parser.parse_args(argv)
    messages = source_read()
    problems = corpus_problems(messages) + guideline_problems(messages, guideline_examples())
    if args.write and not problems:
        corpus_write(messages)
    for name, chosen in (("messages", messages), ("dev", [m for m in messages if m.split == "dev"]),
                         ("test", [m for m in messages if m.split == "test"])):
        path = CORPUS_DIR / f"{name}.jsonl"
        if not path.exists() or jsonl_read(path) != [m.to_json() for m in chosen]:
            problems.append(f"{path.name} is not the build of messages.src.txt (run with --write)")
    stats = statistics(messages)
    print(_table(stats))
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
