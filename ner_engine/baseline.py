"""Token-classification (BIO) baseline with the same backbone, data and decoding to character spans.

It reads the text once for all types (no queries), so it is the speed and accuracy reference that the
Prompt-bioMRC machinery has to beat. Trained per corpus: a BIO tagger cannot skip unannotated types, so
mixing partially labelled corpora would teach it false negatives.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ner_engine.backbones import DEFAULT_BACKBONE, device_resolve, encoder_load, tokenizer_load
from ner_engine.decoding import Candidate, overlaps_resolve
from ner_engine.evaluation import EvaluationReport, spans_evaluate
from ner_engine.triplets import _is_word_start, _windows
from ner_engine.types import Document, Span


@dataclass
class BioTaggerConfig:
    backbone: str = DEFAULT_BACKBONE
    entity_types: list[str] = field(default_factory=lambda: ["DISEASE"])
    max_length: int = 128
    window_overlap: int = 16
    dropout: float = 0.1

    @property
    def labels(self) -> list[str]:
        return ["O"] + [f"{prefix}-{t}" for t in self.entity_types for prefix in ("B", "I")]


class BioTagger(nn.Module):
    def __init__(self, config: BioTaggerConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, len(config.labels))

    def forward(self, input_ids, attention_mask, labels=None):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, L, H]
        logits = self.classifier(self.dropout(hidden))                                                # [B, L, C]
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return logits, loss


@dataclass
class TaggedWindow:
    text_index: int
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    labels: list[int]


class BioEncoder:
    """Texts -> windows of [CLS] text [SEP] with per-token BIO labels, and logits -> character spans."""

    def __init__(self, tokenizer, config: BioTaggerConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.label_ids = {label: i for i, label in enumerate(config.labels)}

    def windows(self, texts: Sequence[str], spans_per_text: Sequence[Sequence[Span]] | None = None) -> list[TaggedWindow]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        windows = []
        for index, text in enumerate(texts):
            ids = encoded["input_ids"][index]
            offsets = [tuple(o) for o in encoded["offset_mapping"][index]]
            labels = [0] * len(ids)
            for span in (spans_per_text[index] if spans_per_text else []):
                if span.type not in self.config.entity_types:
                    continue
                inside = [i for i, (s, e) in enumerate(offsets) if s < span.end and e > span.start]
                for position, token in enumerate(inside):
                    labels[token] = self.label_ids[("B-" if position == 0 else "I-") + span.type]
            starts = [_is_word_start(text, s) for s, _ in offsets]
            for lo, hi in _windows(len(ids), self.config.max_length - 2, self.config.window_overlap, starts):
                windows.append(TaggedWindow(index, [self.tokenizer.cls_token_id, *ids[lo:hi], self.tokenizer.sep_token_id],
                                            [(-1, -1), *offsets[lo:hi], (-1, -1)], [-100, *labels[lo:hi], -100]))
        return windows

    def collate(self, windows: Sequence[TaggedWindow]) -> dict[str, torch.Tensor]:
        length = max(len(w.input_ids) for w in windows)
        batch = {"input_ids": torch.full((len(windows), length), self.tokenizer.pad_token_id or 0),
                 "attention_mask": torch.zeros((len(windows), length), dtype=torch.long),
                 "labels": torch.full((len(windows), length), -100)}
        for row, window in enumerate(windows):
            n = len(window.input_ids)
            batch["input_ids"][row, :n] = torch.tensor(window.input_ids)
            batch["attention_mask"][row, :n] = 1
            batch["labels"][row, :n] = torch.tensor(window.labels)
        return batch

    def decode(self, window: TaggedWindow, label_ids: Sequence[int], probabilities: Sequence[float]) -> list[Candidate]:
        labels = self.config.labels
        candidates, current = [], None
        for position, (offset, label_id) in enumerate(zip(window.offsets, label_ids)):
            label = labels[label_id] if offset[0] >= 0 else "O"
            prefix, _, entity_type = label.partition("-")
            if current and (prefix != "I" or entity_type != current[2]):
                candidates.append(current)
                current = None
            if prefix == "B" or (prefix == "I" and current is None):
                current = [offset[0], offset[1], entity_type, [probabilities[position]]]
            elif prefix == "I":
                current[1] = offset[1]
                current[3].append(probabilities[position])
        if current:
            candidates.append(current)
        return [Candidate(s, e, t, float(sum(p) / len(p))) for s, e, t, p in candidates]


@torch.inference_mode()
def bio_predict(model: BioTagger, encoder: BioEncoder, texts: Sequence[str], *, device: str = "cpu",
                batch_size: int = 64) -> list[list[Candidate]]:
    model.eval()
    windows = encoder.windows(texts)
    per_text: list[list[Candidate]] = [[] for _ in texts]
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        batch = encoder.collate(chunk)
        logits, _ = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        probabilities, label_ids = logits.float().softmax(-1).max(-1)
        for row, window in enumerate(chunk):
            n = len(window.input_ids)
            per_text[window.text_index].extend(encoder.decode(window, label_ids[row, :n].tolist(),
                                                              probabilities[row, :n].tolist()))
    return [overlaps_resolve(found) for found in per_text]


def bio_evaluate(model: BioTagger, encoder: BioEncoder, documents: Sequence[Document], *, device: str = "cpu",
                 merge: dict | None = None) -> EvaluationReport:
    predicted = bio_predict(model, encoder, [d.text for d in documents], device=device)
    return spans_evaluate([d.spans for d in documents], [[Span(c.start, c.end, c.type) for c in p] for p in predicted],
                          merge=merge)


def bio_train(config: BioTaggerConfig, train_documents: Sequence[Document], dev_documents: Sequence[Document], *,
              epochs: int = 2, batch_size: int = 32, learning_rate: float = 5e-5, head_learning_rate: float = 1e-3,
              seed: int = 13, device: str = "auto", encoder_config=None, output_dir: str | Path | None = None) -> dict:
    """Fine-tune the whole encoder with a linear BIO head; keep the epoch with the best dev micro F1."""
    random.seed(seed)
    torch.manual_seed(seed)
    device = device_resolve(device)
    started = time.time()
    tokenizer = tokenizer_load(config.backbone)
    encoder_io = BioEncoder(tokenizer, config)
    model = BioTagger(config, encoder_load(config.backbone, config=encoder_config)).to(device)
    windows = encoder_io.windows([d.text for d in train_documents], [d.spans for d in train_documents])
    optimizer = torch.optim.AdamW([
        {"params": model.encoder.parameters(), "lr": learning_rate},
        {"params": model.classifier.parameters(), "lr": head_learning_rate}], weight_decay=0.01)
    total = epochs * math.ceil(len(windows) / batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / max(total, 1)))
    best_f1, best_state, history = -1.0, None, []
    for epoch in range(epochs):
        model.train()
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        random.Random(seed * 1000 + epoch).shuffle(batches)
        for indices in batches:
            batch = {k: v.to(device) for k, v in encoder_io.collate([windows[i] for i in indices]).items()}
            _, loss = model(**batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        dev_f1 = bio_evaluate(model, encoder_io, dev_documents, device=device).strict["micro"].f1
        history.append({"epoch": epoch + 1, "dev_f1": dev_f1, "elapsed_s": round(time.time() - started, 1)})
        if dev_f1 > best_f1:
            best_f1 = dev_f1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    if output_dir:
        output = Path(output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / "history.json").write_text(json.dumps({"config": asdict(config), "history": history}, indent=2))
    return {"model": model, "encoder": encoder_io, "history": history, "best_dev_f1": best_f1,
            "trainable_parameters": sum(p.numel() for p in model.parameters()),
            "wall_time_s": round(time.time() - started, 1)}
