"""Model artifacts on disk and the `Extractor`: load once, then extract entities from many texts."""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ner_engine.backbones import device_resolve, encoder_load, tokenizer_load
from ner_engine.batching import triplets_predict, windows_predict
from ner_engine.modeling import PromptBioMRC, PromptBioMRCConfig, encoder_freeze, lora_apply, trainable_state_dict
from ner_engine.triplets import OnePassBuilder, QueryTemplate, TripletBuilder, templates_from_dict, templates_to_dict
from ner_engine.context.surface import candidates_original, model_views
from ner_engine.types import Entity

DEFAULT_MODEL_DIR = Path(__file__).with_name("models") / "default"
WEIGHTS_FILE = "model.safetensors"


def model_build(config: PromptBioMRCConfig, *, encoder_config=None) -> PromptBioMRC:
    """Encoder (pretrained weights, or randomly initialised from `encoder_config`) + soft prompts + span head,
    with LoRA or partial freezing applied when the config asks for it."""
    encoder = encoder_load(config.backbone, config=encoder_config)
    model = encoder_freeze(lora_apply(PromptBioMRC(config, encoder)))
    model.pretrained_encoder = encoder_config is None
    return model


# How model.safetensors holds the weights (its metadata "format"):
#   delta-int8  only what training changed, each encoder matrix as an int8 difference from the pretrained
#               backbone (one scale per row) -- a few MB on top of the pip-installed encoder;
#   lora        adapters + soft prompts + head, on top of the pretrained backbone;
#   full        every weight in half precision, for encoders with no pretrained weights to refer to (tests).
DELTA_SCALE = ".delta_scale"


def _delta_encode(state: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    encoded = {}
    for name, tensor in state.items():
        reference = base.get(name.removeprefix("encoder."))
        if reference is None or tensor.dim() != 2 or reference.shape != tensor.shape:
            encoded[name] = tensor.float()  # head, soft prompts, biases, LayerNorms: small, kept exact
            continue
        delta = tensor.float() - reference.float()                                 # [rows, cols]
        scale = delta.abs().amax(dim=1).clamp(min=1e-12) / 127.0                   # [rows]
        encoded[name] = torch.round(delta / scale[:, None]).to(torch.int8)         # [rows, cols]
        encoded[name + DELTA_SCALE] = scale
    return encoded


def _delta_decode(state: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    decoded = {}
    for name, tensor in state.items():
        if name.endswith(DELTA_SCALE):
            continue
        scale = state.get(name + DELTA_SCALE)
        if scale is None:
            decoded[name] = tensor
        else:
            decoded[name] = base[name.removeprefix("encoder.")].float() + tensor.float() * scale[:, None]
    return decoded


def artifact_save(directory: str | Path, model: PromptBioMRC, templates: Mapping[str, QueryTemplate],
                  *, card: dict | None = None) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = trainable_state_dict(model)
    if model.config.lora_rank > 0:
        weights_format = "lora"
    elif getattr(model, "pretrained_encoder", False):
        weights_format = "delta-int8"
        state = _delta_encode(state, encoder_load(model.config.backbone).state_dict())
    else:
        weights_format = "full"
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": weights_format})
    (directory / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    encoder = model.encoder.get_base_model() if hasattr(model.encoder, "get_base_model") else model.encoder
    (directory / "encoder_config.json").write_text(encoder.config.to_json_string())
    (directory / "templates.json").write_text(json.dumps(templates_to_dict(templates), indent=2) + "\n")
    if card is not None:
        from ner_engine.model_card import model_card_write

        model_card_write(directory, card)


def artifact_load(directory: str | Path, *, device: str = "cpu") -> tuple[PromptBioMRC, dict[str, QueryTemplate]]:
    from safetensors import safe_open
    from transformers import AutoConfig

    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory} is not a Prompt-bioMRC model (no config.json)")
    config = PromptBioMRCConfig.from_dict(json.loads((directory / "config.json").read_text()))
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as weights:
        weights_format = (weights.metadata() or {}).get("format") or ("lora" if config.lora_rank > 0 else "full")
    state = load_file(str(directory / WEIGHTS_FILE))
    # Only a "full" artifact holds every encoder weight; the others start from the pretrained backbone.
    encoder_config = (AutoConfig.from_pretrained(str(directory / "encoder_config.json"))
                      if weights_format == "full" else None)
    model = model_build(config, encoder_config=encoder_config)
    if weights_format == "delta-int8":
        state = _delta_decode(state, model.encoder.state_dict())
    missing = set(state) - set(model.state_dict())
    if missing:
        raise ValueError(f"{directory}: weights do not fit the model ({sorted(missing)[:3]} ...)")
    model.load_state_dict(state, strict=False)
    templates = templates_from_dict(json.loads((directory / "templates.json").read_text()))
    return model.to(device).eval(), templates


PRECISIONS = ("fp32", "int8")


def model_quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation (weights int8 with one scale per output channel, activations quantised per
    batch) of the encoder's feed-forward layers, for CPU inference; attention projections and the span head
    stay float32. About half the fp32 time per message (bench/ner_speed.py); its F1 cost on the shipped model,
    from `evaluate --precision int8`, is in the README. Works on any BERT-style model whose encoder is
    `model.encoder` (other module names: every linear layer is quantised)."""
    import warnings

    per_channel = torch.ao.quantization.per_channel_dynamic_qconfig
    feed_forward = {name: per_channel for name, module in model.encoder.named_modules()
                    if isinstance(module, torch.nn.Linear)
                    and (name.endswith("intermediate.dense") or (name.endswith("output.dense") and "attention" not in name))}
    with warnings.catch_warnings():
        # torch.ao's eager quantisation is marked deprecated in favour of torchao; it is what the pinned torch
        # ships and needs no extra package.
        warnings.simplefilter("ignore")
        spec = feed_forward or {torch.nn.Linear: per_channel}
        model.encoder = torch.ao.quantization.quantize_dynamic(model.encoder, spec, dtype=torch.qint8)
    return model


def model_dir_resolve(model: str | Path) -> Path:
    return DEFAULT_MODEL_DIR if str(model) == "default" else Path(model)


class Extractor:
    """Thread-safe inference: every (text, type) query of a call runs in the same batched forward passes."""

    # Resolve invisible characters, abbreviations and misspellings before the model (spans stay in the original).
    surface_resolve: bool = True

    def __init__(self, model: PromptBioMRC, templates: Mapping[str, QueryTemplate], *, device: str = "cpu",
                 model_version: str = "unversioned", batch_size: int = 64, threshold: float | None = None,
                 context: bool = True) -> None:
        config = model.config
        self.model = model
        self.device = device
        self.model_version = model_version
        self.template_version = "shipped"
        self.batch_size = batch_size
        self.threshold = config.decode_threshold if threshold is None else threshold
        self.tokenizer = tokenizer_load(config.backbone)
        # per_type: one query per (text, type); one_pass: every type from one encoder pass per text window.
        kind = OnePassBuilder if config.query_mode == "one_pass" else TripletBuilder
        self.builder = kind(self.tokenizer, templates, config.entity_types, prompt_mode=config.prompt_mode,
                            max_length=config.max_length, window_overlap=config.window_overlap)
        self._lock = threading.Lock()
        # Clinical context (assertion, attributes, codes) per entity; vocabularies load lazily, once.
        self.context = None
        if context:
            from ner_engine.context import ContextPipeline

            self.context = ContextPipeline()

    @classmethod
    def load(cls, model: str | Path = "default", *, device: str = "auto", precision: str = "fp32",
             **kwargs) -> "Extractor":
        """`precision="int8"` quantises the encoder for CPU inference (see `model_quantize_int8`)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        directory = model_dir_resolve(model)
        device = device_resolve(device)
        if precision == "int8" and device != "cpu":
            raise ValueError("int8 precision is for CPU inference; on a GPU use fp32 (autocast) instead")
        network, templates = artifact_load(directory, device=device)
        if precision == "int8":
            network = model_quantize_int8(network)
        card_path = directory / "model_card.json"
        version = json.loads(card_path.read_text()).get("version", directory.name) if card_path.exists() else directory.name
        return cls(network, templates, device=device, model_version=version, **kwargs)

    @property
    def entity_types(self) -> tuple[str, ...]:
        return self.builder.entity_types

    @property
    def templates(self) -> dict[str, QueryTemplate]:
        return dict(self.builder.templates)

    def set_templates(self, templates: Mapping[str, str | QueryTemplate | Mapping], *, version: str) -> None:
        """Replace hard templates (text only, or full entries); raises TemplateError and keeps the old ones
        when any is unusable."""
        current = self.builder.templates
        parsed: dict[str, QueryTemplate] = {}
        for entity_type, value in templates.items():
            if entity_type not in current:
                continue  # the model has no query for that type
            if isinstance(value, QueryTemplate):
                parsed[entity_type] = value
            elif isinstance(value, str):
                parsed[entity_type] = QueryTemplate(entity_type, current[entity_type].anchor, value,
                                                    current[entity_type].soft_prompt_length)
            else:
                parsed[entity_type] = QueryTemplate(entity_type, value.get("anchor", current[entity_type].anchor),
                                                    value["template"], current[entity_type].soft_prompt_length)
        with self._lock:
            self.builder.templates_set(parsed)
            self.template_version = version

    def _one_pass(self, texts: list[str], wanted: list[str]) -> list:
        """Every type is computed in the same pass; only `wanted` ones are decoded (the others cost nothing
        extra, and skipping them keeps a type out of the cross-type overlap resolution)."""
        if not wanted or not texts:
            return [[] for _ in texts]
        windows = self.builder.build(texts, [wanted] * len(texts))
        return windows_predict(self.model, self.builder, windows, len(texts), batch_size=self.batch_size,
                               device=self.device, pad_id=self.tokenizer.pad_token_id or 0, threshold=self.threshold)

    def extract(self, texts: Sequence[str], *, types: Sequence[str] | None = None) -> list[list[Entity]]:
        if isinstance(texts, str):
            raise TypeError("extract() takes a list of texts")
        # An empty list asks for no type (a document whose corpus annotates none), not for every type.
        wanted = [t for t in (self.entity_types if types is None else types) if t in self.entity_types]
        # Pre-processing: the model reads each text with format characters removed, abbreviations expanded and
        # misspellings corrected (ner_engine.context.surface); spans are mapped back to the original below.
        originals = list(texts)
        views = model_views(originals) if self.surface_resolve else None
        texts = [view.text for view in views] if views else originals
        with self._lock:
            if isinstance(self.builder, OnePassBuilder):
                candidates = self._one_pass(list(texts), wanted)
            else:
                triplets = self.builder.build(list(texts), [wanted] * len(texts))
                if not triplets:
                    return [[] for _ in texts]
                candidates = triplets_predict(self.model, triplets, len(texts), batch_size=self.batch_size,
                                              device=self.device, pad_id=self.tokenizer.pad_token_id or 0,
                                              threshold=self.threshold)
        if views:
            results = [[Entity(start, end, c.type, view.original[start:end], round(c.score, 4))
                        for start, end, c in candidates_original(view, found)]
                       for view, found in zip(views, candidates)]
        else:
            results = [[Entity(c.start, c.end, c.type, text[c.start : c.end], round(c.score, 4)) for c in found]
                       for text, found in zip(texts, candidates)]
        if self.context is not None:
            for text, entities in zip(originals, results):
                self.context.contextualise(text, entities)
        return results
