"""Training: corpus mix -> triplets -> Prompt-bioMRC, with early stopping on dev F1 and resumable checkpoints."""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
import math
import random
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ner_engine.artifacts import artifact_load, artifact_save, model_build, model_dir_resolve
from ner_engine.backbones import device_resolve, tokenizer_load
from ner_engine.batching import (length_batches, triplets_collate, triplets_decode, triplets_forward, window_batches,
                                 windows_collate, windows_decode, windows_forward)
from ner_engine.datasets import DEFAULT_DATA_DIR, REGISTRY, dataset_load
from ner_engine.evaluation import spans_evaluate
from ner_engine.lay_data import PHRASES_FILE
from ner_engine.model_card import model_card_write
from ner_engine.modeling import PromptBioMRC, PromptBioMRCConfig, trainable_state_dict
from ner_engine.triplets import OnePassBuilder, TripletBuilder, documents_to_triplets, documents_to_windows, templates_load
from ner_engine.types import Document, Span

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: PromptBioMRCConfig = field(default_factory=PromptBioMRCConfig)
    datasets: list[str] = field(default_factory=lambda: ["ncbi-disease", "bc5cdr", "maccrobat"])
    dev_datasets: list[str] | None = None          # default: the training corpora
    test_datasets: list[str] = field(default_factory=list)  # scored into the model card after training
    data_dir: str | None = None
    templates: str | None = None                   # JSON file; default ner_engine/templates.json
    output_dir: str = "runs/default"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5                    # encoder (or LoRA adapters)
    head_learning_rate: float = 1e-3               # soft prompts and span head
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    seed: int = 13
    patience: int = 2                              # dev evaluations without improvement before stopping
    eval_every: int | None = None                  # steps between dev evaluations (always at each epoch's end)
    init_from: str | None = None                   # a model directory (or "default") to start from
    decode_thresholds: list[float] | None = None   # tried on dev at each evaluation; default DECODE_THRESHOLDS
    max_train_documents: int | None = None         # per corpus, for quick runs
    max_dev_documents: int | None = 1000           # per corpus
    checkpoint_every: int = 200                    # steps
    max_steps: int | None = None                   # stop early (also on --resume) and keep the best so far
    device: str = "auto"
    threads: int | None = None                     # torch threads (CPU); None = torch's default
    time_budget: float | None = None               # seconds of training in this sitting; then checkpoint and stop
    feature_cache: str | None = "var/ner_cache/features"  # tokenised training examples, reused across runs
    version: str = "dev"

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        model = PromptBioMRCConfig.from_dict(data.pop("model", {}))
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(model=model, **data)

    def to_dict(self) -> dict:
        return asdict(self)


def config_override(data: dict, overrides: Sequence[str]) -> dict:
    """Apply `a.b=value` overrides; values are JSON when they parse as JSON, else strings."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise ValueError(f"override {override!r} is not key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return data


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _documents(names: Sequence[str], split: str, data_dir: str | None, limit: int | None) -> dict[str, list[Document]]:
    loaded = {}
    for name in names:
        documents = dataset_load(name, split, data_dir=data_dir)
        if limit is not None and len(documents) > limit:
            documents = random.Random(0).sample(documents, limit)  # fixed subsample, independent of the seed
        loaded[name] = documents
    return loaded


def builder_make(config: PromptBioMRCConfig, tokenizer, templates) -> TripletBuilder | OnePassBuilder:
    """The input builder of a model config: per-type triplets or one-pass windows."""
    kind = OnePassBuilder if config.query_mode == "one_pass" else TripletBuilder
    return kind(tokenizer, templates, config.entity_types, prompt_mode=config.prompt_mode,
                max_length=config.max_length, window_overlap=config.window_overlap)


def examples_build(builder, documents: Sequence[Document]) -> list:
    """Training/evaluation examples: triplets (per type) or windows (one pass)."""
    if isinstance(builder, OnePassBuilder):
        return documents_to_windows(builder, documents)
    return documents_to_triplets(builder, documents)


def examples_forward(model, builder, examples, *, batch_size: int, device: str, pad_id: int):
    if isinstance(builder, OnePassBuilder):
        return windows_forward(model, builder, examples, batch_size=batch_size, device=device, pad_id=pad_id)
    return triplets_forward(model, examples, batch_size=batch_size, device=device, pad_id=pad_id)


def examples_decode(builder, examples, logits, num_texts: int, *, threshold: float):
    if isinstance(builder, OnePassBuilder):
        return windows_decode(builder, examples, logits, num_texts, threshold=threshold)
    return triplets_decode(examples, logits, num_texts, threshold=threshold)


def model_evaluate(model: PromptBioMRC, builder, documents: Sequence[Document], *,
                   device: str, pad_id: int, merge: dict | None = None, batch_size: int = 64,
                   thresholds: Sequence[float] | None = None):
    """Strict/lenient scores of a model on documents (only the types each document annotates are queried).
    With several `thresholds`, one forward pass serves them all and a {threshold: report} dict is returned."""
    model.eval()
    examples = examples_build(builder, documents)
    logits = examples_forward(model, builder, examples, batch_size=batch_size, device=device, pad_id=pad_id)
    gold = [[s for s in doc.spans if s.type in builder.entity_types] for doc in documents]  # in the model's scope
    reports = {}
    for threshold in thresholds or [model.config.decode_threshold]:
        predicted = examples_decode(builder, examples, logits, len(documents), threshold=threshold)
        predicted_spans = [[Span(c.start, c.end, c.type) for c in found] for found in predicted]
        reports[threshold] = spans_evaluate(gold, predicted_spans, merge=merge)
    return reports if thresholds else reports[model.config.decode_threshold]


DECODE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def decode_threshold_tune(model: PromptBioMRC, builder: TripletBuilder, dev_sets: dict[str, list[Document]], *,
                          device: str, pad_id: int,
                          thresholds: Sequence[float] = DECODE_THRESHOLDS) -> tuple[float, dict]:
    """The decoding threshold with the best mean dev micro F1, and the dev reports at that threshold."""
    by_dataset = {name: model_evaluate(model, builder, docs, device=device, pad_id=pad_id, thresholds=thresholds,
                                       merge=REGISTRY[name].eval_merge if name in REGISTRY else None)
                  for name, docs in dev_sets.items()}
    best = max(thresholds, key=lambda t: (np.mean([r[t].strict["micro"].f1 for r in by_dataset.values()]), t))
    return best, {name: reports[best].to_dict() for name, reports in by_dataset.items()}


def _weights_init(model: PromptBioMRC, source: str) -> None:
    """Start from another model's trained weights (same entity types and prompt shape); parts this model
    keeps frozen stay at their pretrained values."""
    donor, _ = artifact_load(model_dir_resolve(source))
    if donor.config.entity_types != model.config.entity_types:
        raise ValueError(f"init_from {source}: entity types {donor.config.entity_types} differ from "
                         f"{model.config.entity_types}")
    trainable = {name: p.shape for name, p in model.named_parameters() if p.requires_grad}
    # Only tensors of the same name and shape: a per-type donor gives a one-pass model its encoder and span
    # head; soft prompts of another length start from the templates instead.
    taken = {k: v for k, v in donor.state_dict().items() if k in trainable and v.shape == trainable[k]}
    model.load_state_dict(taken, strict=False)
    logger.info("initialised %d of %d trainable tensors from %s", len(taken), len(trainable), source)


def _training_examples(config: TrainConfig, builder) -> list:
    """Tokenised training examples, cached on disk (pickle of plain lists) under a key of everything they
    depend on: the corpora (names, file sizes and times), the limits, the builder's settings and prompts."""
    names = sorted(config.datasets)
    fingerprint = {"datasets": names, "limit": config.max_train_documents, "data_dir": config.data_dir,
                   "builder": type(builder).__name__, "backbone": config.model.backbone,
                   "mode": builder.prompt_mode, "max_length": builder.max_length, "overlap": builder.window_overlap,
                   "types": list(builder.entity_types),
                   "prompts": [builder.templates[t].hard_text() for t in builder.entity_types],
                   "soft": [builder.templates[t].soft_prompt_length for t in builder.entity_types],
                   "sources": _source_stamps(config), "version": 2}
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = Path(config.feature_cache) / f"{key}.pkl" if config.feature_cache else None
    if path is not None and path.exists():
        with open(path, "rb") as handle:
            examples = pickle.load(handle)
        logger.info("%d training examples from the feature cache %s", len(examples), path)
        return examples
    documents = [d for docs in _documents(config.datasets, "train", config.data_dir, config.max_train_documents).values()
                 for d in docs]
    examples = examples_build(builder, documents)
    logger.info("%d training documents -> %d examples", len(documents), len(examples))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as handle:
            pickle.dump(examples, handle, protocol=pickle.HIGHEST_PROTOCOL)
        path.with_suffix(".tmp").replace(path)
    return examples


def _source_stamps(config: TrainConfig) -> list:
    """Size and modification time of the generator's phrase file and of every jsonl: corpus; registered
    corpora are fixed releases and stamped by name and data folder (cheap: no file is read)."""
    stamps = [[str(PHRASES_FILE), PHRASES_FILE.stat().st_size, PHRASES_FILE.stat().st_mtime]]
    root = Path(config.data_dir) if config.data_dir else DEFAULT_DATA_DIR
    for name in config.datasets:
        if name.startswith("jsonl:"):
            path = Path(name[len("jsonl:"):])
            stamps.append([str(path), path.stat().st_size, path.stat().st_mtime])
        else:
            stamps.append([name, str(root)])  # registered corpora are fixed releases
    return stamps


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


@dataclass
class _Run:
    """One sitting of training: what `train` sets up once and its stages share."""
    config: TrainConfig
    device: str
    output: Path
    builder: TripletBuilder | OnePassBuilder
    examples: list                                 # training triplets (per type) or windows (one pass)
    dev_sets: dict[str, list[Document]]
    model: PromptBioMRC
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    pad_id: int
    state: dict                                    # saved in the checkpoint: epoch, steps, best dev F1, history
    started: float                                 # time.time() at the start, less the elapsed time of earlier sittings
    sitting_started: float
    running: float = 0.0                           # moving average of the training loss

    @property
    def one_pass(self) -> bool:
        return isinstance(self.builder, OnePassBuilder)

    @property
    def checkpoint(self) -> Path:
        return self.output / "checkpoint.pt"

    @property
    def thresholds(self) -> Sequence[float]:
        return self.config.decode_thresholds or DECODE_THRESHOLDS


def _optimizer_make(config: TrainConfig, model: PromptBioMRC, num_examples: int):
    """AdamW with the encoder's and the head's learning rates, and linear warm-up then decay over the run."""
    head_parameters = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    encoder_parameters = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    optimizer = torch.optim.AdamW([
        {"params": encoder_parameters, "lr": config.learning_rate},
        {"params": head_parameters, "lr": config.head_learning_rate},
    ], weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(num_examples / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    warmup = int(total_steps * config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(
        (step + 1) / max(warmup, 1), max(0.0, (total_steps - step) / max(total_steps - warmup, 1))))
    return optimizer, scheduler


def _run_start(config: TrainConfig, *, resume: bool, encoder_config) -> _Run:
    """Seed, data, model, optimiser; the state of the last checkpoint when resuming."""
    started = time.time()
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = device_resolve(config.device)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    tokenizer = tokenizer_load(config.model.backbone)
    # The model has one soft-prompt length for every type (SoftPrompt is [T, K, H]); the templates follow it.
    templates = {t: replace(template, soft_prompt_length=config.model.soft_prompt_length)
                 for t, template in templates_load(config.templates).items() if t in config.model.entity_types}
    builder = builder_make(config.model, tokenizer, templates)
    one_pass = isinstance(builder, OnePassBuilder)
    examples = _training_examples(config, builder)
    dev_sets = _documents(config.dev_datasets or config.datasets, "dev", config.data_dir, config.max_dev_documents)

    model = model_build(config.model, encoder_config=encoder_config)
    model.soft_prompt_init([builder.soft_init_ids(t) for t in config.model.entity_types],
                           [builder.marker_init_ids(t) for t in config.model.entity_types] if one_pass else None)
    if config.init_from:
        _weights_init(model, config.init_from)
    model.to(device)
    optimizer, scheduler = _optimizer_make(config, model, len(examples))

    state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "best_f1": -1.0, "bad_evaluations": 0, "history": [],
             "elapsed": 0.0}
    checkpoint = output / "checkpoint.pt"
    if resume and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        logger.info("resumed at epoch %d step %d", state["epoch"], state["step_in_epoch"])
    return _Run(config, device, output, builder, examples, dev_sets, model, optimizer, scheduler,
                pad_id=tokenizer.pad_token_id or 0, state=state, started=started - state["elapsed"],
                sitting_started=time.time())


def _checkpoint_save(run: _Run) -> None:
    run.state["elapsed"] = time.time() - run.started
    torch.save({"model": trainable_state_dict(run.model), "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(), "state": run.state}, run.checkpoint.with_suffix(".tmp"))
    run.checkpoint.with_suffix(".tmp").replace(run.checkpoint)


def _dev_evaluate(run: _Run) -> None:
    """Score dev, keep the best model in output_dir/best, count evaluations without improvement."""
    state, model = run.state, run.model
    # Scored at the best decoding threshold: the span probabilities' calibration drifts during training,
    # and a fixed threshold made model selection follow that drift rather than the ranking of spans.
    threshold, scores = decode_threshold_tune(model, run.builder, run.dev_sets, device=run.device, pad_id=run.pad_id,
                                              thresholds=run.thresholds)
    model.train()
    dev_f1 = float(np.mean([s["strict"]["micro"]["f1"] for s in scores.values()]))
    state["history"].append({"epoch": state["epoch"] + 1, "step": state["step"], "dev_f1": dev_f1,
                             "threshold": threshold, "loss": round(run.running, 5),
                             "elapsed_s": round(time.time() - run.started, 1)})
    logger.info("step %d (epoch %d) dev micro F1 %.4f at threshold %s (%s)", state["step"], state["epoch"] + 1,
                dev_f1, threshold, ", ".join(f"{n} {s['strict']['micro']['f1']:.4f}" for n, s in scores.items()))
    if dev_f1 > state["best_f1"]:
        state["best_f1"], state["bad_evaluations"] = dev_f1, 0
        model.config.decode_threshold = threshold
        artifact_save(run.output / "best", model, run.builder.templates)
        (run.output / "best" / "dev_scores.json").write_text(json.dumps(scores, indent=2))
    else:
        state["bad_evaluations"] += 1


def _stop(run: _Run) -> bool:
    """Early stopping (dev F1 did not improve `patience` times) or `max_steps` reached."""
    config, state = run.config, run.state
    return (state["bad_evaluations"] >= config.patience
            or (config.max_steps is not None and state["step"] >= config.max_steps))


def _out_of_time(run: _Run) -> bool:
    return run.config.time_budget is not None and time.time() - run.sitting_started >= run.config.time_budget


def _step(run: _Run, chunk: list, autocast) -> float:
    """One optimisation step on a batch of examples; returns its loss."""
    width = run.config.model.max_span_width
    if run.one_pass:
        batch = windows_collate(run.builder, chunk, pad_id=run.pad_id, max_span_width=width, with_labels=True)
    else:
        batch = triplets_collate(chunk, pad_id=run.pad_id, max_span_width=width, with_labels=True)
    batch = {k: v.to(run.device) for k, v in batch.items()}
    with autocast:
        loss = (run.model.forward_one_pass(**batch) if run.one_pass else run.model(**batch)).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _epoch_train(run: _Run, *, progress: bool) -> bool:
    """Train through the rest of the current epoch (dev evaluations every `eval_every` steps and at its end,
    checkpoints every `checkpoint_every` steps and after each evaluation); returns whether the sitting's time
    budget ran out."""
    config, state = run.config, run.state
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if run.device.startswith("cuda")
                else torch.autocast("cpu", enabled=False))
    batches = (window_batches if run.one_pass else length_batches)(run.examples, config.batch_size)
    random.Random(config.seed * 1000 + state["epoch"]).shuffle(batches)
    run.model.train()
    bar = tqdm(batches[state["step_in_epoch"]:], desc=f"epoch {state['epoch'] + 1}/{config.epochs}",
               disable=not progress, mininterval=10)
    evaluated_at = None
    budget_spent = False
    for indices in bar:
        loss = _step(run, [run.examples[i] for i in indices], autocast)
        run.running = 0.98 * run.running + 0.02 * loss if run.running else loss
        bar.set_postfix(loss=f"{run.running:.4f}")
        state["step_in_epoch"] += 1
        state["step"] += 1
        if config.eval_every and state["step"] % config.eval_every == 0:
            _dev_evaluate(run)
            evaluated_at = state["step"]
        if state["step_in_epoch"] % config.checkpoint_every == 0 or evaluated_at == state["step"]:
            _checkpoint_save(run)
        if _stop(run):
            break
        if _out_of_time(run):
            budget_spent = True
            logger.info("time budget of %ss used at step %d; resume with --resume", config.time_budget, state["step"])
            break
    if evaluated_at != state["step"]:
        _dev_evaluate(run)
    # A run cut short by max_steps resumes inside the same epoch.
    if state["step_in_epoch"] >= len(batches):
        state["epoch"] += 1
        state["step_in_epoch"] = 0
    _checkpoint_save(run)
    return budget_spent


def _card_write(run: _Run) -> dict:
    """The model card of the best model: recipe, cost, dev history; the best model reloaded from its artifact,
    its decoding threshold tuned again on dev, and scored on the test corpora."""
    config, device, model = run.config, run.device, run.model
    elapsed = time.time() - run.started
    best = run.output / "best"
    card = {
        "name": "Prompt-bioMRC", "version": config.version,
        "description": "Medical NER as machine reading comprehension with hard + soft prompts (Prompt-bioMRC).",
        "recipe": config.to_dict(),
        "cost": {"total_parameters": sum(p.numel() for p in model.parameters()),
                 "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                 "training_wall_time_s": round(elapsed, 1), "peak_memory_mb": _peak_memory_mb(device),
                 "device": device if device == "cpu" else torch.cuda.get_device_name(),
                 "torch_threads": torch.get_num_threads(),
                 "artifact_bytes": (best / "model.safetensors").stat().st_size if best.exists() else None},
        "history": run.state["history"],
        "dev": json.loads((best / "dev_scores.json").read_text()) if best.exists() else {},
        "data": [f"{name}: {REGISTRY[name].description} — licence: {REGISTRY[name].licence}"
                 for name in config.datasets if name in REGISTRY],
    }
    if best.exists():
        best_model, _ = artifact_load(best, device=device)
        threshold, card["dev"] = decode_threshold_tune(best_model, run.builder, run.dev_sets, device=device,
                                                       pad_id=run.pad_id, thresholds=run.thresholds)
        best_model.config.decode_threshold = threshold
        (best / "config.json").write_text(json.dumps(best_model.config.to_dict(), indent=2) + "\n")
        logger.info("decoding threshold tuned on dev: %s", threshold)
        card["test"] = {name: model_evaluate(best_model, run.builder, docs, device=device, pad_id=run.pad_id,
                                             merge=REGISTRY[name].eval_merge if name in REGISTRY else None).to_dict()
                        for name, docs in _documents(config.test_datasets, "test", config.data_dir, None).items()}
        model_card_write(best, card)
    return card


def train(config: TrainConfig, *, resume: bool = False, encoder_config=None, progress: bool = True) -> dict:
    """Train and write the best model (by dev micro F1) to `output_dir/best`; returns its model card."""
    run = _run_start(config, resume=resume, encoder_config=encoder_config)
    budget_spent = False  # a sitting always trains at least one step
    while run.state["epoch"] < config.epochs and not _stop(run) and not budget_spent:
        budget_spent = _epoch_train(run, progress=progress)
    return _card_write(run)
