"""Model artifacts on disk: build a model from its config, save and load a model folder (config.json,
encoder_config.json, templates.json, model card, model.safetensors), quantise for CPU inference, and find the
shipped model (`default`)."""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ner_engine.backbones import encoder_load
from ner_engine.model_card import model_card_write
from ner_engine.modeling import PromptBioMRC, PromptBioMRCConfig, encoder_freeze, lora_apply, trainable_state_dict
from ner_engine.triplets import QueryTemplate, templates_from_dict, templates_to_dict

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
    # A copy of the training templates (ner_engine/templates.json, the source) for the model's types.
    (directory / "templates.json").write_text(json.dumps(templates_to_dict(templates), indent=2) + "\n")
    if card is not None:
        model_card_write(directory, card)


def artifact_load(directory: str | Path, *, device: str = "cpu") -> tuple[PromptBioMRC, dict[str, QueryTemplate]]:
    from transformers import AutoConfig  # on use, like backbones: importing transformers costs seconds

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
