"""From span-head logits to character spans: thresholds, start <= end, width limit, overlap resolution."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidate:
    start: int          # character offsets, end exclusive
    end: int
    type: str
    score: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def spans_decode(start_logits: np.ndarray, end_logits: np.ndarray, match_logits: np.ndarray,
                 offsets: Sequence[tuple[int, int]], word_start: Sequence[int], word_end: Sequence[int],
                 entity_type: str, *, threshold: float = 0.5) -> list[Candidate]:
    """Decode one triplet. start/end_logits: [L]; match_logits: [L, W] for span (i, i + w).

    A span is kept when its start, its end and their match each pass `threshold`; only context tokens that
    begin (end) a word may start (end) a span, so a span never cuts a word in half. Its score is the geometric
    mean of the three probabilities.
    """
    length, width = match_logits.shape
    start_probs, end_probs = _sigmoid(start_logits), _sigmoid(end_logits)
    match_probs = _sigmoid(match_logits)
    starts = [i for i in range(length) if word_start[i] and offsets[i][0] >= 0 and start_probs[i] > threshold]
    candidates = []
    for i in starts:
        for w in range(min(width, length - i)):
            j = i + w
            if offsets[j][0] < 0:
                break  # left the context
            if not word_end[j] or end_probs[j] <= threshold or match_probs[i, w] <= threshold:
                continue
            score = float((start_probs[i] * end_probs[j] * match_probs[i, w]) ** (1 / 3))
            candidates.append(Candidate(offsets[i][0], offsets[j][1], entity_type, score))
    return candidates


def overlaps_resolve(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Keep the best-scoring non-overlapping spans across all types (identical spans from overlapping
    windows collapse first). Ties go to the longer span, then the earlier one, so results are deterministic."""
    best: dict[tuple[int, int, str], Candidate] = {}
    for candidate in candidates:
        key = (candidate.start, candidate.end, candidate.type)
        if key not in best or candidate.score > best[key].score:
            best[key] = candidate
    ranked = sorted(best.values(), key=lambda c: (-c.score, -(c.end - c.start), c.start, c.type))
    kept: list[Candidate] = []
    for candidate in ranked:
        if all(candidate.end <= other.start or candidate.start >= other.end for other in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda c: (c.start, c.end, c.type))
