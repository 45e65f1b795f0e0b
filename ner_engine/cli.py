"""`python -m ner_engine train|evaluate|predict|datasets|fetch`.

`training` and `extractor` (which import torch and transformers: seconds) are imported by the commands that use
them, so that `datasets` and `fetch` start at once."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ner_engine.datasets import REGISTRY, dataset_load
from ner_engine.evaluation import spans_evaluate
from ner_engine.fetch import corpus_fetch
from ner_engine.types import Span


def _train(args) -> int:
    from ner_engine.training import TrainConfig, config_override, train  # torch: on use (module docstring)

    data = json.loads(Path(args.config).read_text()) if args.config else {}
    if args.data_dir:
        data["data_dir"] = args.data_dir
    if args.time_budget is not None:
        data["time_budget"] = args.time_budget
    if args.threads is not None:
        data["threads"] = args.threads
    config = TrainConfig.from_dict(config_override(data, args.overrides))
    card = train(config, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"output": str(Path(config.output_dir) / "best"), "history": card["history"],
                      "cost": card["cost"]}, indent=2))
    return 0


def _evaluate(args) -> int:
    from ner_engine.extractor import Extractor  # torch: on use (module docstring)

    # Scores need spans only: the clinical-context stage is off.
    extractor = Extractor.load(args.model, device=args.device, precision=args.precision, context=False)
    documents = dataset_load(args.dataset, args.split, data_dir=args.data_dir)
    predicted = []
    for i in range(0, len(documents), 256):
        chunk = documents[i : i + 256]
        for document, entities in zip(chunk, _extract_per_document(extractor, chunk)):
            predicted.append([Span(e.start, e.end, e.type) for e in entities])
    merge = REGISTRY[args.dataset].eval_merge if args.dataset in REGISTRY else None
    # Gold mentions of types the model has no query for (e.g. ANATOMY) are out of its scope, not misses.
    gold = [[s for s in d.spans if s.type in extractor.entity_types] for d in documents]
    report = spans_evaluate(gold, predicted, merge=merge).to_dict()
    report.update({"model": args.model, "model_version": extractor.model_version, "precision": args.precision,
                   "dataset": args.dataset, "split": args.split})
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


def _extract_per_document(extractor, documents):
    # Each document is queried only for the types its corpus annotates, as in training and the model card.
    by_types: dict[tuple, list[int]] = {}
    for index, document in enumerate(documents):
        by_types.setdefault(tuple(document.types), []).append(index)
    results: list = [None] * len(documents)
    for types, indices in by_types.items():
        found = extractor.extract([documents[i].text for i in indices], types=list(types))
        for index, entities in zip(indices, found):
            results[index] = entities
    return results


def _predict(args) -> int:
    rows = []
    # Check the whole input before loading the model (seconds): a bad line fails fast and nothing is written.
    with open(args.input, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                print(f"{args.input}:{line_number}: expected a JSON object with a \"text\" field ({error})", file=sys.stderr)
                return 2
            if not isinstance(text, str):
                print(f"{args.input}:{line_number}: \"text\" must be a string", file=sys.stderr)
                return 2
            rows.append(row)
    from ner_engine.extractor import Extractor  # torch: on use (module docstring)

    extractor = Extractor.load(args.model, device=args.device, precision=args.precision)
    with open(args.output, "w", encoding="utf-8") as out:
        for i in range(0, len(rows), args.batch_size):
            chunk = rows[i : i + args.batch_size]
            for row, entities in zip(chunk, extractor.extract([r["text"] for r in chunk])):
                row["entities"] = [e.to_dict() for e in entities]
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


def _datasets(args) -> int:
    for name, spec in REGISTRY.items():
        print(f"{name:16} types={','.join(spec.types):40} licence={spec.licence}\n{'':16} {spec.description}")
    return 0


def _fetch(args) -> int:
    try:
        for path in corpus_fetch(args.name, args.data_dir):
            print(path)
    except (KeyError, ValueError) as error:
        print(error.args[0], file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ner_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a Prompt-bioMRC model")
    train.add_argument("--config", help="JSON training config (see ner_engine/configs/)")
    train.add_argument("--data-dir", help="folder holding the corpora (default ../shared/data)")
    train.add_argument("--resume", action="store_true", help="continue from output_dir/checkpoint.pt")
    train.add_argument("--time-budget", type=float, help="seconds of training in this sitting; then checkpoint, "
                       "evaluate dev and stop (continue later with --resume)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: the config's, else torch's)")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. epochs=2 model.prompt_mode=soft")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="strict/lenient entity-level scores on a corpus split")
    evaluate.add_argument("--model", default="default", help="model folder or 'default'")
    evaluate.add_argument("--dataset", required=True, help="registered corpus name or jsonl:PATH")
    evaluate.add_argument("--split", default="test", choices=("train", "dev", "test"))
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--precision", default="fp32", choices=("fp32", "int8"), help="int8: quantised, CPU only")
    evaluate.add_argument("--json", help="also write the report here")
    evaluate.set_defaults(func=_evaluate)

    predict = sub.add_parser("predict", help="JSON lines {id, text} in, the same with entities out")
    predict.add_argument("--model", default="default")
    predict.add_argument("--input", required=True)
    predict.add_argument("--output", required=True)
    predict.add_argument("--device", default="auto")
    predict.add_argument("--precision", default="fp32", choices=("fp32", "int8"), help="int8: quantised, CPU only")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.set_defaults(func=_predict)

    datasets = sub.add_parser("datasets", help="list registered corpora")
    datasets.set_defaults(func=_datasets)

    fetch = sub.add_parser("fetch", help="download a public corpus by name (needs internet)")
    fetch.add_argument("name")
    fetch.add_argument("--data-dir", required=True)
    fetch.set_defaults(func=_fetch)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)
