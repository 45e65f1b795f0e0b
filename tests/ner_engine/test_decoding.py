"""Span decoding from head logits and overlap resolution."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ner_engine.decoding import Candidate, overlaps_resolve, spans_decode

HIGH, LOW = 6.0, -6.0
# "[CLS] q q [SEP] Severe chest pain relief [SEP] [PAD]": the context has 4 tokens, "pain" is split in two.
TEXT = "Severe chest painful relief"
OFFSETS = [(-1, -1)] * 4 + [(0, 6), (7, 12), (13, 17), (17, 20), (21, 27), (-1, -1), (-1, -1)]
WORD_START = [0] * 4 + [1, 1, 1, 0, 1, 0, 0]
WORD_END = [0] * 4 + [1, 1, 0, 1, 1, 0, 0]
L = len(OFFSETS)


def logits(width=4, starts=(), ends=(), matches=()):
    start = np.full(L, LOW)
    end = np.full(L, LOW)
    match = np.full((L, width), LOW)
    for i in starts:
        start[i] = HIGH
    for j in ends:
        end[j] = HIGH
    for i, j in matches:
        match[i, j - i] = HIGH
    return start, end, match


def decode(start, end, match, **kwargs):
    return spans_decode(start, end, match, OFFSETS, WORD_START, WORD_END, "SYMPTOM", **kwargs)


def test_a_span_needs_start_end_and_match():
    start, end, match = logits(starts=[5], ends=[7], matches=[(5, 7)])
    [candidate] = decode(start, end, match)
    assert (candidate.start, candidate.end, candidate.type) == (7, 20, "SYMPTOM")
    assert TEXT[candidate.start:candidate.end] == "chest painful"
    expected = 1 / (1 + math.exp(-HIGH))
    assert candidate.score == pytest.approx(expected)
    for missing in ({"starts": []}, {"ends": []}, {"matches": []}):
        arguments = {"starts": [5], "ends": [7], "matches": [(5, 7)], **missing}
        assert decode(*logits(**arguments)) == []


def test_threshold():
    start, end, match = logits(starts=[5], ends=[5], matches=[(5, 5)])
    start[5] = 0.5  # sigmoid(0.5) ~ 0.62
    assert len(decode(start, end, match, threshold=0.5)) == 1
    assert decode(start, end, match, threshold=0.7) == []
    [candidate] = decode(start, end, match, threshold=0.5)
    probabilities = 1 / (1 + np.exp(-np.array([0.5, HIGH, HIGH])))
    assert candidate.score == pytest.approx(float(np.prod(probabilities) ** (1 / 3)))


def test_end_never_before_start():
    # The end token lies before the start token: the band holds only spans (i, i + w), w >= 0.
    start, end, match = logits(starts=[6], ends=[5], matches=[(5, 5), (6, 6)])
    assert decode(start, end, match) == []


def test_max_span_width():
    start, end, match = logits(width=4, starts=[4], ends=[8])
    match[4, :] = HIGH  # every width allowed by the band, but 4 -> 8 needs width 5
    assert decode(start, end, match) == []
    wide_start, wide_end, wide_match = logits(width=5, starts=[4], ends=[8], matches=[(4, 8)])
    [candidate] = decode(wide_start, wide_end, wide_match)
    assert TEXT[candidate.start:candidate.end] == TEXT


def test_spans_never_cut_words():
    # "pain|ful": the start cannot be on "ful" (not a word start), the end cannot be on "pain" (not a word end).
    start, end, match = logits(starts=[7], ends=[7], matches=[(7, 7)])
    assert decode(start, end, match) == []
    start, end, match = logits(starts=[6], ends=[6], matches=[(6, 6)])
    assert decode(start, end, match) == []
    start, end, match = logits(starts=[6], ends=[6, 7], matches=[(6, 6), (6, 7)])
    assert [(c.start, c.end) for c in decode(start, end, match)] == [(13, 20)]


def test_spans_stay_in_the_context():
    # Prompt positions and the [SEP]/padding after the context never start or end a span.
    start, end, match = logits(width=4, starts=[1, 8], ends=[2, 9, 10], matches=[(1, 2), (8, 9), (8, 10)])
    assert decode(start, end, match) == []


def test_several_spans_from_one_triplet():
    start, end, match = logits(starts=[4, 5], ends=[4, 7], matches=[(4, 4), (5, 7), (4, 7)])
    found = {(c.start, c.end) for c in decode(start, end, match)}
    assert found == {(0, 6), (7, 20), (0, 20)}


# --- overlap resolution -----------------------------------------------------------------------------------

def test_duplicates_from_overlapping_windows_collapse_to_the_best_score():
    candidates = [Candidate(0, 5, "DRUG", 0.7), Candidate(0, 5, "DRUG", 0.9), Candidate(0, 5, "DRUG", 0.8)]
    assert overlaps_resolve(candidates) == [Candidate(0, 5, "DRUG", 0.9)]


def test_overlaps_within_a_type_keep_the_best():
    candidates = [Candidate(0, 10, "SYMPTOM", 0.6), Candidate(6, 10, "SYMPTOM", 0.9),
                  Candidate(12, 15, "SYMPTOM", 0.55)]
    assert overlaps_resolve(candidates) == [Candidate(6, 10, "SYMPTOM", 0.9), Candidate(12, 15, "SYMPTOM", 0.55)]


def test_overlaps_across_types_keep_the_best():
    candidates = [Candidate(0, 7, "DRUG", 0.8), Candidate(0, 7, "DISEASE", 0.95), Candidate(5, 9, "SYMPTOM", 0.7),
                  Candidate(9, 12, "SYMPTOM", 0.6)]
    # Touching spans (end == start) do not overlap.
    assert overlaps_resolve(candidates) == [Candidate(0, 7, "DISEASE", 0.95), Candidate(9, 12, "SYMPTOM", 0.6)]


def test_ties_are_deterministic():
    ties = [Candidate(0, 4, "SYMPTOM", 0.8), Candidate(2, 9, "DISEASE", 0.8), Candidate(8, 12, "DRUG", 0.8),
            Candidate(2, 9, "DRUG", 0.8), Candidate(20, 25, "SYMPTOM", 0.8), Candidate(22, 27, "SYMPTOM", 0.8)]
    # Longer first (2-9), then for equal length the earlier one (20-25), then the type name (DISEASE < DRUG).
    expected = [Candidate(2, 9, "DISEASE", 0.8), Candidate(20, 25, "SYMPTOM", 0.8)]
    for order in itertools.permutations(ties):
        assert overlaps_resolve(order) == expected


def test_resolution_output_is_sorted_and_non_overlapping():
    rng = np.random.default_rng(5)
    candidates = []
    for _ in range(300):
        start = int(rng.integers(0, 80))
        candidates.append(Candidate(start, start + int(rng.integers(1, 12)), str(rng.choice(["DRUG", "SYMPTOM"])),
                                    float(rng.choice([0.6, 0.7, 0.8, 0.9]))))
    kept = overlaps_resolve(candidates)
    assert kept == sorted(kept, key=lambda c: (c.start, c.end, c.type))
    for a, b in zip(kept, kept[1:]):
        assert a.end <= b.start
    best = max(c.score for c in candidates)
    assert any(c.score == best for c in kept)
    assert overlaps_resolve(list(reversed(candidates))) == kept
