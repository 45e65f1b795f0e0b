"""Context tests see no installed mention -> code dictionaries unless a test installs its own: what a machine
has built into var/context_dictionaries must not change their results."""
from __future__ import annotations

import pytest

from ner_engine.context.dictionaries import DICTIONARIES_ENV


@pytest.fixture(autouse=True)
def no_installed_dictionaries(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(DICTIONARIES_ENV, str(tmp_path_factory.mktemp("no-dictionaries") / "absent"))
