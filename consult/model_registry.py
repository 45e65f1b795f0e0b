"""Installed NER models and their model cards, for the admin."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from consult.extraction import model_card_read, model_dir_resolve, ner_engine_dir


def _models_root() -> Path:
    return ner_engine_dir() / "models"


def _active_dir() -> Path:
    return Path(model_dir_resolve(settings.NER_MODEL)).resolve()


def ner_models_installed() -> list[dict[str, Any]]:
    """Every model folder under ner_engine/models (plus NER_MODEL when it points elsewhere), active first."""
    active = _active_dir()
    root = _models_root()
    directories = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    if active not in [d.resolve() for d in directories] and active.is_dir():
        directories.append(active)
    models = []
    for directory in directories:
        installed = (directory / "config.json").exists()
        card = model_card_read(directory)
        if not installed and not card:
            continue
        models.append({
            "name": directory.name,
            "path": str(directory),
            "active": directory.resolve() == active,
            "installed": installed,
            "card": card,
            "version": card.get("version", directory.name),
            "description": card.get("description", ""),
            "scores": _card_scores(card),
        })
    models.sort(key=lambda m: (not m["active"], m["name"]))
    return models


def _card_scores(card: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for split in ("dev", "test"):
        for dataset, report in (card.get(split) or {}).items():
            for entity_type, scores in (report.get("strict") or {}).items():
                rows.append({"split": split, "dataset": dataset, "type": entity_type,
                             "precision": scores.get("precision"), "recall": scores.get("recall"),
                             "f1": scores.get("f1")})
    return rows
