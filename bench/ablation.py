"""Ablation: BIO baseline vs Prompt-bioMRC prompt modes (plain / hard / soft / hybrid), same backbone, data,
budget and seeds; strict test F1 per corpus. Writes bench/results/ablation.{json,md}.

    python bench/ablation.py [--datasets ncbi-disease bc5cdr] [--modes bio hybrid] [--seeds 13 14 15]
                             [--epochs 1] [--max-train-documents N] [--max-test-documents N] [--lora-rank 0]

Runs accumulate in the results file while the budget (every option but datasets, modes and seeds) stays
the same, so headline rows can get more seeds than the others in a second invocation.

Model selection uses the dev split only; the test split is scored once per trained model. With a reduced
budget (--max-*-documents, --epochs) the table measures the modes against each other under that budget,
not the best each can reach; the budget is printed with the table.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ner_engine.baseline import BioTaggerConfig, bio_evaluate, bio_train  # noqa: E402
from ner_engine.datasets import REGISTRY, dataset_load  # noqa: E402
from ner_engine.artifacts import artifact_load  # noqa: E402
from ner_engine.backbones import tokenizer_load  # noqa: E402
from ner_engine.modeling import PromptBioMRCConfig  # noqa: E402
from ner_engine.training import TrainConfig, model_evaluate, train  # noqa: E402
from ner_engine.triplets import TripletBuilder  # noqa: E402

MODES = ("bio", "plain", "hard", "soft", "hybrid")
RESULTS = Path(__file__).resolve().parent / "results"


def _sample(documents, limit):
    return documents if limit is None or len(documents) <= limit else random.Random(0).sample(documents, limit)


def run_one(dataset: str, mode: str, seed: int, args) -> dict:
    spec = REGISTRY[dataset]
    types = list(spec.types)
    test = _sample(dataset_load(dataset, "test"), args.max_test_documents)
    started = time.time()
    if mode == "bio":
        result = bio_train(BioTaggerConfig(entity_types=types), _sample(dataset_load(dataset, "train"), args.max_train_documents),
                           _sample(dataset_load(dataset, "dev"), args.max_dev_documents), epochs=args.epochs, seed=seed,
                           learning_rate=args.learning_rate, batch_size=args.batch_size)
        report = bio_evaluate(result["model"], result["encoder"], test)
    else:
        with tempfile.TemporaryDirectory() as output:
            config = TrainConfig(
                model=PromptBioMRCConfig(entity_types=types, prompt_mode=mode, lora_rank=args.lora_rank),
                datasets=[dataset], output_dir=output, epochs=args.epochs, seed=seed, batch_size=args.batch_size,
                learning_rate=args.learning_rate if args.lora_rank == 0 else 8e-4,
                max_train_documents=args.max_train_documents, max_dev_documents=args.max_dev_documents)
            train(config, progress=False)
            model, templates = artifact_load(Path(output) / "best")
            builder = TripletBuilder(tokenizer_load(model.config.backbone), templates, types, prompt_mode=mode,
                                     max_length=model.config.max_length, window_overlap=model.config.window_overlap)
            report = model_evaluate(model, builder, test, device="cpu", pad_id=0)
    return {"dataset": dataset, "mode": mode, "seed": seed, "f1": report.strict["micro"].f1,
            "per_type": {t: s.f1 for t, s in report.strict.items()}, "wall_time_s": round(time.time() - started, 1)}


def table(rows: list[dict], budget: dict) -> str:
    datasets = sorted({r["dataset"] for r in rows})
    lines = [f"Budget: {json.dumps(budget)}", "", "| mode | " + " | ".join(datasets) + " |",
             "|---|" + "---|" * len(datasets)]
    for mode in MODES:
        cells = []
        for dataset in datasets:
            scores = [r["f1"] for r in rows if r["mode"] == mode and r["dataset"] == dataset]
            if not scores:
                cells.append("–")
            elif len(scores) == 1:
                cells.append(f"{scores[0]:.4f} (1 seed)")
            else:
                cells.append(f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f} ({len(scores)} seeds)")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ncbi-disease", "bc5cdr"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lora-rank", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="encoder, both models (heads: 1e-3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-train-documents", type=int)
    parser.add_argument("--max-dev-documents", type=int, default=1000)
    parser.add_argument("--max-test-documents", type=int)
    parser.add_argument("--output", default=str(RESULTS / "ablation"))
    args = parser.parse_args()
    budget = {k: v for k, v in vars(args).items() if k not in ("output", "datasets", "modes", "seeds")}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    done_path = output.with_suffix(".json")
    saved = json.loads(done_path.read_text()) if done_path.exists() else {}
    rows = saved["rows"] if saved.get("budget") == budget else []  # resume only under the same budget
    for dataset in args.datasets:
        for seed in args.seeds:
            for mode in args.modes:
                if any(r["dataset"] == dataset and r["mode"] == mode and r["seed"] == seed for r in rows):
                    continue  # resumable: finished runs are kept
                row = run_one(dataset, mode, seed, args)
                rows.append(row)
                print(json.dumps(row), flush=True)
                done_path.write_text(json.dumps({"budget": budget, "rows": rows}, indent=2) + "\n")
    output.with_suffix(".md").write_text(table(rows, budget))
    print(table(rows, budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
