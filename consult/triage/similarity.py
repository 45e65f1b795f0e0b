"""Findings heard by meaning, not only by listed words: "I can't really swallow my spit" is the knowledge base's
"unable to swallow, even saliva" though no synonym lists those words.

Each clause of a message is compared with every finding's descriptions (its label, its question and its
synonyms, "..." gaps read as spaces) by the cosine similarity of sentence embeddings; a clause names the finding
whose description it is closest to when that similarity reaches `threshold` (chosen on the dev half of
bench/data/finding_phrases.tsv by bench/finding_recall.py). The encoder is injected (the app passes the
pretrained MiniLM sentence encoder of ner_engine.context.embeddings), so this module stays pure numpy.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from consult.triage.knowledge import Finding

# (texts) -> [len(texts), H] L2-normalised sentence embeddings.
Encode = Callable[[Sequence[str]], np.ndarray]

# Clause boundaries: sentence ends, semicolons, line breaks, and the conjunctions that join two complaints.
_CLAUSE_BREAK = re.compile(r"[.!?;\n]+|,?\s+(?:and|but|also|plus|so|because|though|although|while|then)\s+|,\s+",
                           re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z']+")
# A description that is itself a negative ("unable to swallow", "can't keep fluids down", "no wet nappies"): a
# negation in the patient's clause is then part of the finding, not its denial.
NEGATIVE_DESCRIPTION = re.compile(r"\b(?:no|not|never|unable|can'?t|cannot|won'?t|without|stopped)\b", re.IGNORECASE)
MIN_CLAUSE_WORDS = 2


@dataclass(frozen=True)
class SimilarFinding:
    finding_id: str
    start: int  # the clause's span in the message (characters)
    end: int
    similarity: float  # cosine, -1..1
    negative: bool  # the closest description is itself a negative (see NEGATIVE_DESCRIPTION)


def clauses_split(text: str) -> list[tuple[int, int]]:
    """[(start, end)] of the clauses of `text` with at least MIN_CLAUSE_WORDS words, whitespace trimmed."""
    spans, start = [], 0
    for match in [*_CLAUSE_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if len(_WORD.findall(piece)) >= MIN_CLAUSE_WORDS:
            left = start + len(piece) - len(piece.lstrip())
            spans.append((left, start + len(piece.rstrip())))
        if match:
            start = match.end()
    return spans


class FindingSimilarity:
    """The descriptions of `findings` embedded once (N descriptions x H); `find` embeds a message's clauses."""

    def __init__(self, findings: Mapping[str, Finding], encode: Encode, *, threshold: float,
                 margin: float = 0.1) -> None:
        self.encode = encode
        self.threshold = threshold
        self.margin = margin
        rows: list[tuple[str, str]] = []
        for finding in findings.values():
            texts = [finding.label, finding.question, *(s.replace("...", " ") for s in finding.synonyms)]
            rows += [(finding.id, " ".join(t.split())) for t in dict.fromkeys(texts)]
        self.finding_ids = [finding_id for finding_id, _ in rows]
        self.negative = np.array([NEGATIVE_DESCRIPTION.search(t) is not None for _, t in rows])  # [N]
        self.matrix = np.asarray(encode([t for _, t in rows]), dtype=np.float32)  # [N, H]

    def find(self, text: str, *, known: Collection[str] = ()) -> list[SimilarFinding]:
        """The finding each clause of `text` is closest to, where the similarity reaches the threshold, unless
        a finding in `known` (read from the message's own words) is within `margin` of it: then the clause
        restates that finding ("a pounding headache since Tuesday" is a headache, not a thunderclap headache)."""
        spans = clauses_split(text)
        if not spans:
            return []
        queries = np.asarray(self.encode([text[s:e] for s, e in spans]), dtype=np.float32)  # [C, H]
        similarity = queries @ self.matrix.T  # [C, H] x [H, N] -> [C, N]
        best = similarity.argmax(axis=1)  # [C]
        known_rows = np.array([finding_id in known for finding_id in self.finding_ids])  # [N]
        restated = (similarity[:, known_rows].max(axis=1) if known_rows.any()
                    else np.full(len(spans), -1.0))  # [C]
        return [
            SimilarFinding(self.finding_ids[b], s, e, float(similarity[c, b]), bool(self.negative[b]))
            for c, ((s, e), b) in enumerate(zip(spans, best))
            if similarity[c, b] >= self.threshold and similarity[c, b] - restated[c] >= self.margin
        ]
