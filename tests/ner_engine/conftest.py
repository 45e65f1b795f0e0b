"""Shared fixtures for the ner_engine tests: the MiniLM tokenizer, tiny random-config BERT encoders, a small
training corpus, and one tiny Prompt-bioMRC model trained once per session (full fine-tuning, overfit to
strict F1 = 1.0 on six sentences). Nothing here imports Django."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ner_engine.backbones import DEFAULT_BACKBONE, tokenizer_load
from ner_engine.datasets import DEFAULT_DATA_DIR, documents_write_jsonl
from ner_engine.modeling import PromptBioMRCConfig
from ner_engine.types import Document, Span

# A background training job needs the machine's cores; these tests stay on one thread.
torch.set_num_threads(1)

TRAIN_TYPES = ("SYMPTOM", "DRUG")
TRAIN_SENTENCES: list[tuple[str, list[tuple[str, str]]]] = [
    ("I have a bad headache since taking ibuprofen.", [("headache", "SYMPTOM"), ("ibuprofen", "DRUG")]),
    ("Fever and cough after the aspirin dose.", [("Fever", "SYMPTOM"), ("cough", "SYMPTOM"), ("aspirin", "DRUG")]),
    ("She reports nausea with metformin.", [("nausea", "SYMPTOM"), ("metformin", "DRUG")]),
    ("Paracetamol did not help my back pain.", [("Paracetamol", "DRUG"), ("back pain", "SYMPTOM")]),
    ("No dizziness today.", [("dizziness", "SYMPTOM")]),
    ("He takes insulin every morning.", [("insulin", "DRUG")]),
]


def training_documents() -> list[Document]:
    documents = []
    for index, (text, mentions) in enumerate(TRAIN_SENTENCES):
        spans = []
        for mention, entity_type in mentions:
            start = text.index(mention)
            spans.append(Span(start, start + len(mention), entity_type))
        documents.append(Document(id=f"s{index}", text=text, spans=sorted(spans), types=TRAIN_TYPES))
    return documents


def tiny_bert_config(vocab_size: int = 30522):
    """A randomly initialised 2-layer BERT small enough to train in seconds on one CPU thread."""
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=128)


def tiny_model_config(**overrides) -> PromptBioMRCConfig:
    values = dict(entity_types=list(TRAIN_TYPES), prompt_mode="hard", soft_prompt_length=4, max_span_width=4,
                  match_hidden_size=32, dropout=0.0, max_length=64, window_overlap=8, lora_rank=0)
    values.update(overrides)
    return PromptBioMRCConfig(**values)


def tiny_train_config(jsonl: Path, output_dir: Path, **overrides):
    from ner_engine.training import TrainConfig

    values = dict(model=tiny_model_config(), datasets=[f"jsonl:{jsonl}"], output_dir=str(output_dir), epochs=40,
                  batch_size=2, learning_rate=5e-3, head_learning_rate=5e-3, weight_decay=0.0, warmup_ratio=0.0,
                  patience=10, checkpoint_every=1000, device="cpu", threads=1, version="tiny-test-1",
                  # One threshold: the tiny model is selected for margins that survive fp16 reloading and
                  # batching, not for a low threshold that happens to score 1.0 on six sentences.
                  decode_thresholds=[0.5], feature_cache=None)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """The helpers above for test modules (several conftest.py files exist, so `from conftest import` is unsafe)."""
    return SimpleNamespace(model_config=tiny_model_config, train_config=tiny_train_config, documents=training_documents,
                           bert_config=tiny_bert_config, sentences=TRAIN_SENTENCES, types=TRAIN_TYPES)


@pytest.fixture(scope="session")
def tokenizer():
    return tokenizer_load(DEFAULT_BACKBONE)


@pytest.fixture(scope="session")
def bert_config(tokenizer):
    return tiny_bert_config(len(tokenizer))


@pytest.fixture(scope="session")
def train_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    documents_write_jsonl(training_documents(), path)
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, train_jsonl, bert_config) -> dict:
    """Train the tiny model once: {"card", "output", "best", "jsonl", "config"}."""
    from ner_engine.training import train

    output = tmp_path_factory.mktemp("tiny-run")
    config = tiny_train_config(train_jsonl, output)
    card = train(config, encoder_config=bert_config, progress=False)
    return {"card": card, "output": output, "best": output / "best", "jsonl": train_jsonl, "config": config}


@pytest.fixture(scope="session")
def trained_one_pass(tmp_path_factory, train_jsonl, bert_config) -> dict:
    """The tiny model in one-pass mode (prompt cache, BIO auxiliary head), trained once: same keys as `trained`."""
    from ner_engine.training import train

    output = tmp_path_factory.mktemp("tiny-one-pass")
    config = tiny_train_config(train_jsonl, output, model=tiny_model_config(
        query_mode="one_pass", prompt_mode="hybrid", max_length=128, bio_loss_weight=0.5), epochs=60, patience=20)
    card = train(config, encoder_config=bert_config, progress=False)
    return {"card": card, "output": output, "best": output / "best", "jsonl": train_jsonl, "config": config}


@pytest.fixture(scope="session")
def one_pass_extractor(trained_one_pass):
    from ner_engine.extractor import Extractor

    return Extractor.load(trained_one_pass["best"], device="cpu", context=False)


@pytest.fixture(scope="session")
def tiny_extractor(trained):
    """The NER extractor alone: the clinical-context layer (its own tests) is switched off."""
    from ner_engine.extractor import Extractor

    return Extractor.load(trained["best"], device="cpu", context=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DEFAULT_DATA_DIR / "README.md").exists():
        pytest.skip(f"../shared/data not present: no corpora at {DEFAULT_DATA_DIR} (set NER_DATA_DIR)")
    return DEFAULT_DATA_DIR
