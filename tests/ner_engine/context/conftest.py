"""Context tests see no installed mention -> code dictionaries and no term-embedding caches unless a test makes
its own: what a machine has built into var/context_dictionaries or var/context_cache must not change their
results (nor load the sentence encoder behind their back)."""
from __future__ import annotations

import pytest

from ner_engine.context.dictionaries import DICTIONARIES_ENV
from ner_engine.context.embeddings import CACHE_ENV, EMBEDDINGS_ENV


@pytest.fixture(autouse=True)
def no_installed_dictionaries(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(DICTIONARIES_ENV, str(tmp_path_factory.mktemp("no-dictionaries") / "absent"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("no-embedding-cache") / "absent"))
    monkeypatch.delenv(EMBEDDINGS_ENV, raising=False)
