"""python -m ner_engine.context build-dictionary CORPUS [CORPUS ...] [--data-dir DIR] [--out DIR] [--splits train,dev]

Learns a mention -> code dictionary from each coded corpus's training annotations (train + dev; never test)
and writes it to DIR/CORPUS.tsv (default: $NER_CONTEXT_DICTIONARIES or var/context_dictionaries/), where the
normaliser picks it up. Run once per deployment from its own copy of the corpora, like training the model.
`list` prints the coded corpora.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ner_engine.context.dictionaries import CODED_CORPORA, TRAINING_SPLITS, dictionaries_dir, dictionary_build, \
    dictionary_save


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ner_engine.context", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-dictionary", help="learn mention -> code dictionaries from training splits")
    build.add_argument("corpora", nargs="+", choices=sorted(CODED_CORPORA), metavar="CORPUS")
    build.add_argument("--data-dir", type=Path, default=None,
                       help="corpora root (default: NER_DATA_DIR or ../shared/data)")
    build.add_argument("--out", type=Path, default=None,
                       help="output folder (default: NER_CONTEXT_DICTIONARIES or var/context_dictionaries)")
    build.add_argument("--splits", default=",".join(TRAINING_SPLITS), help="comma-separated, from train,dev")
    commands.add_parser("list", help="coded corpora a dictionary can be built from")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, corpus in sorted(CODED_CORPORA.items()):
            print(f"{name}\t{', '.join(sorted(set(corpus.label_map.values())))}\t{', '.join(corpus.files)}")
        return 0
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if "test" in splits:
        parser.error("a dictionary from the test split would be scored on what it memorised; use train and dev")
    out = args.out or dictionaries_dir()
    for corpus in args.corpora:
        entries = dictionary_build(corpus, splits=splits, data_dir=args.data_dir)
        path = dictionary_save(entries, out / f"{corpus}.tsv", source=f"{corpus} {'+'.join(splits)}")
        per_system = Counter(f"{e.entity_type}/{e.system}" for e in entries)
        print(f"{path}: {len(entries)} terms ({', '.join(f'{k} {v}' for k, v in sorted(per_system.items()))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
