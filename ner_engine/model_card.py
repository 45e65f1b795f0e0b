"""Model cards: the same facts as JSON (for machines, the admin) and Markdown (for people)."""
from __future__ import annotations

import json
from pathlib import Path


def model_card_write(directory: str | Path, card: dict) -> None:
    directory = Path(directory)
    (directory / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (directory / "model_card.md").write_text(model_card_markdown(card))


def model_card_read(directory: str | Path) -> dict:
    path = Path(directory) / "model_card.json"
    return json.loads(path.read_text()) if path.exists() else {}


def model_card_markdown(card: dict) -> str:
    lines = [f"# {card.get('name', 'Prompt-bioMRC model')} ({card.get('version', 'unversioned')})", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += ["## Recipe", "", "```json", json.dumps(card.get("recipe", {}), indent=2), "```", ""]
    cost = card.get("cost", {})
    if cost:
        lines += ["## Size and cost", "", "| figure | value |", "|---|---|"]
        lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in cost.items()]
        lines.append("")
    for section, title in (("dev", "Development scores (model selection)"), ("test", "Test scores")):
        results = card.get(section, {})
        if not results:
            continue
        lines += [f"## {title}", "", "Strict entity-level F1 (exact character span and type); re-compute with",
                  "`python -m ner_engine evaluate --model default --dataset NAME --split " + section + "`.", "",
                  "| dataset | type | precision | recall | F1 | lenient F1 |", "|---|---|---|---|---|---|"]
        for dataset, report in results.items():
            for entity_type, scores in report["strict"].items():
                lenient = report["lenient"][entity_type]["f1"]
                lines.append(f"| {dataset} | {entity_type} | {scores['precision']:.4f} | {scores['recall']:.4f} "
                             f"| {scores['f1']:.4f} | {lenient:.4f} |")
        lines.append("")
    if card.get("data"):
        lines += ["## Training data and licences", ""] + [f"- {item}" for item in card["data"]] + [""]
    return "\n".join(lines)
