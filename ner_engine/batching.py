"""Triplets -> padded tensors, and batched prediction back to character spans."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ner_engine.decoding import Candidate, overlaps_resolve, spans_decode
from ner_engine.triplets import OnePassBuilder, PassWindow, Triplet


def triplets_collate(triplets: Sequence[Triplet], *, pad_id: int, max_span_width: int,
                     with_labels: bool = False) -> dict[str, torch.Tensor]:
    length = max(len(t.input_ids) for t in triplets)
    size = len(triplets)
    batch = {
        "input_ids": torch.full((size, length), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((size, length), dtype=torch.long),
        "token_type_ids": torch.zeros((size, length), dtype=torch.long),
        "soft_mask": torch.zeros((size, length), dtype=torch.long),
        "type_ids": torch.tensor([t.type_index for t in triplets], dtype=torch.long),
        "context_mask": torch.zeros((size, length), dtype=torch.bool),
    }
    if with_labels:
        batch["start_labels"] = torch.zeros((size, length), dtype=torch.long)
        batch["end_labels"] = torch.zeros((size, length), dtype=torch.long)
        batch["match_labels"] = torch.zeros((size, length, max_span_width), dtype=torch.long)
    for row, triplet in enumerate(triplets):
        n = len(triplet.input_ids)
        batch["input_ids"][row, :n] = torch.tensor(triplet.input_ids)
        batch["attention_mask"][row, :n] = 1
        batch["token_type_ids"][row, :n] = torch.tensor(triplet.token_type_ids)
        batch["soft_mask"][row, :n] = torch.tensor(triplet.soft_mask)
        batch["context_mask"][row, :n] = torch.tensor([o[0] >= 0 for o in triplet.offsets])
        if with_labels:
            for start, end in triplet.gold_spans:
                batch["start_labels"][row, start] = 1
                batch["end_labels"][row, end] = 1
                if end - start < max_span_width:
                    batch["match_labels"][row, start, end - start] = 1
    return batch


def length_batches(triplets: Sequence[Triplet], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length so padding stays small; the order within is stable."""
    order = sorted(range(len(triplets)), key=lambda i: len(triplets[i].input_ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class TripletLogits:
    start: np.ndarray   # [L]
    end: np.ndarray     # [L]
    match: np.ndarray   # [L, W]


@torch.inference_mode()
def triplets_forward(model, triplets: Sequence[Triplet], *, batch_size: int = 64, device: str = "cpu",
                     pad_id: int = 0) -> list[TripletLogits]:
    """Span-head logits for every triplet, in input order, trimmed to each triplet's length."""
    logits: list[TripletLogits | None] = [None] * len(triplets)
    width = model.config.max_span_width
    for indices in length_batches(triplets, batch_size):
        chunk = [triplets[i] for i in indices]
        batch = triplets_collate(chunk, pad_id=pad_id, max_span_width=width)
        output = model(**{k: v.to(device) for k, v in batch.items()})
        start = output.start_logits.float().cpu().numpy()
        end = output.end_logits.float().cpu().numpy()
        match = output.match_logits.float().cpu().numpy()
        for row, index in enumerate(indices):
            n = len(triplets[index].input_ids)
            logits[index] = TripletLogits(start[row, :n], end[row, :n], match[row, :n])
    return logits


def triplets_decode(triplets: Sequence[Triplet], logits: Sequence[TripletLogits], num_texts: int, *,
                    threshold: float = 0.5) -> list[list[Candidate]]:
    """Resolved candidates per text from precomputed logits (cheap: thresholds can be tried on one forward)."""
    per_text: list[list[Candidate]] = [[] for _ in range(num_texts)]
    for triplet, out in zip(triplets, logits):
        per_text[triplet.text_index].extend(spans_decode(
            out.start, out.end, out.match, triplet.offsets, triplet.word_start, triplet.word_end, triplet.type,
            threshold=threshold))
    return [overlaps_resolve(candidates) for candidates in per_text]


def triplets_predict(model, triplets: Sequence[Triplet], num_texts: int, *, batch_size: int = 64,
                     device: str = "cpu", pad_id: int = 0, threshold: float = 0.5) -> list[list[Candidate]]:
    """Run the model over triplets and return resolved candidates per text (all types in one pass)."""
    logits = triplets_forward(model, triplets, batch_size=batch_size, device=device, pad_id=pad_id)
    return triplets_decode(triplets, logits, num_texts, threshold=threshold)


# ---- one pass --------------------------------------------------------------------------------------------

def windows_collate(builder: OnePassBuilder, windows: Sequence[PassWindow], *, pad_id: int, max_span_width: int,
                    with_labels: bool = False) -> dict[str, torch.Tensor]:
    """Windows -> the keyword arguments of `PromptBioMRC.forward_one_pass` (labels [B, T, N(, W)] optional)."""
    length = max(len(w.input_ids) for w in windows)
    size, types = len(windows), len(builder.entity_types)
    batch = {
        "prompt_ids": torch.tensor(builder.prompt_ids, dtype=torch.long),
        "prompt_slots": torch.tensor(builder.prompt_slots, dtype=torch.long),
        "marker_positions": torch.tensor(builder.marker_positions, dtype=torch.long),
        "input_ids": torch.full((size, length), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((size, length), dtype=torch.long),
    }
    if with_labels:
        batch["type_mask"] = torch.zeros((size, types), dtype=torch.bool)
        batch["start_labels"] = torch.zeros((size, types, length), dtype=torch.long)
        batch["end_labels"] = torch.zeros((size, types, length), dtype=torch.long)
        batch["match_labels"] = torch.zeros((size, types, length, max_span_width), dtype=torch.long)
        batch["bio_labels"] = torch.zeros((size, types, length), dtype=torch.long)
    for row, window in enumerate(windows):
        n = len(window.input_ids)
        batch["input_ids"][row, :n] = torch.tensor(window.input_ids)
        batch["attention_mask"][row, :n] = 1
        if with_labels:
            batch["type_mask"][row, list(window.types)] = True
            for type_index, spans in window.gold.items():
                for start, end in spans:
                    batch["start_labels"][row, type_index, start] = 1
                    batch["end_labels"][row, type_index, end] = 1
                    if end - start < max_span_width:
                        batch["match_labels"][row, type_index, start, end - start] = 1
                    batch["bio_labels"][row, type_index, start] = 1
                    batch["bio_labels"][row, type_index, start + 1 : end + 1] = 2
    return batch


def window_batches(windows: Sequence[PassWindow], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length so padding stays small; the order within is stable."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def windows_forward(model, builder: OnePassBuilder, windows: Sequence[PassWindow], *, batch_size: int = 64,
                    device: str = "cpu", pad_id: int = 0) -> list[list[TripletLogits]]:
    """Span-head logits for every window and type ([T] lists of TripletLogits), in input order, trimmed."""
    logits: list = [None] * len(windows)
    width = model.config.max_span_width
    for indices in window_batches(windows, batch_size):
        batch = windows_collate(builder, [windows[i] for i in indices], pad_id=pad_id, max_span_width=width)
        output = model.forward_one_pass(**{k: v.to(device) for k, v in batch.items()})
        start = output.start_logits.float().cpu().numpy()      # [B, T, N]
        end = output.end_logits.float().cpu().numpy()          # [B, T, N]
        match = output.match_logits.float().cpu().numpy()      # [B, T, N, W]
        for row, index in enumerate(indices):
            n = len(windows[index].input_ids)
            logits[index] = [TripletLogits(start[row, t, :n], end[row, t, :n], match[row, t, :n])
                             for t in range(start.shape[1])]
    return logits


def windows_decode(builder: OnePassBuilder, windows: Sequence[PassWindow], logits: Sequence[Sequence[TripletLogits]],
                   num_texts: int, *, threshold: float = 0.5,
                   types_per_text: Sequence[Sequence[str]] | None = None) -> list[list[Candidate]]:
    """Resolved candidates per text. Each text keeps only the types asked for it (default: the window's
    `types`); overlaps from neighbouring windows and across types are resolved by score."""
    per_text: list[list[Candidate]] = [[] for _ in range(num_texts)]
    for window, per_type in zip(windows, logits):
        wanted = (window.types if types_per_text is None else
                  [i for i, t in enumerate(builder.entity_types) if t in types_per_text[window.text_index]])
        for type_index in wanted:
            out = per_type[type_index]
            per_text[window.text_index].extend(spans_decode(
                out.start, out.end, out.match, window.offsets, window.word_start, window.word_end,
                builder.entity_types[type_index], threshold=threshold))
    return [overlaps_resolve(candidates) for candidates in per_text]


def windows_predict(model, builder: OnePassBuilder, windows: Sequence[PassWindow], num_texts: int, *,
                    batch_size: int = 64, device: str = "cpu", pad_id: int = 0,
                    threshold: float = 0.5) -> list[list[Candidate]]:
    logits = windows_forward(model, builder, windows, batch_size=batch_size, device=device, pad_id=pad_id)
    return windows_decode(builder, windows, logits, num_texts, threshold=threshold)
