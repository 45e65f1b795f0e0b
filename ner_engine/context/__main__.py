"""python -m ner_engine.context build-dictionary CORPUS [CORPUS ...] [--data-dir DIR] [--out DIR] [--splits train,dev]

Learns a mention -> code dictionary from each coded corpus's training annotations (train + dev; never test)
and writes it to DIR/CORPUS.tsv (default: $NER_CONTEXT_DICTIONARIES or var/context_dictionaries/), where the
normaliser picks it up. Run once per deployment from its own copy of the corpora, like training the model.
`list` prints the coded corpora.

python -m ner_engine.context build-embeddings [--cache DIR] [--prune]

Embeds the terms of every vocabulary the normaliser searches by embedding (symptoms' and diseases': HPO, MeSH,
ICD-10-CM, with the dictionaries installed now) with the pretrained sentence encoder and caches them in DIR
(default: $NER_CONTEXT_CACHE or var/context_cache/), where workers find them when they start
(`ner_engine.context.embeddings`). Run once per deployment, and again after installing a dictionary or upgrading
a vocabulary package; on one busy CPU core it takes ~10 minutes the first time, seconds after a dictionary
change (earlier rows are reused). `--prune` then deletes cache files no vocabulary uses.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from ner_engine.context.dictionaries import CODED_CORPORA, TRAINING_SPLITS, dictionaries_dir, dictionary_build, \
    dictionary_save
from ner_engine.context.embeddings import cache_key, cache_paths
from ner_engine.context.normalisation import Normaliser
from ner_engine.datasets import DEFAULT_DATA_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ner_engine.context", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-dictionary", help="learn mention -> code dictionaries from training splits")
    build.add_argument("corpora", nargs="+", choices=sorted(CODED_CORPORA), metavar="CORPUS")
    build.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                       help="corpora root (default: NER_DATA_DIR or ../shared/data)")
    build.add_argument("--out", type=Path, default=None,
                       help="output folder (default: NER_CONTEXT_DICTIONARIES or var/context_dictionaries)")
    build.add_argument("--splits", default=",".join(TRAINING_SPLITS), help="comma-separated, from train,dev")
    commands.add_parser("list", help="coded corpora a dictionary can be built from")
    embed = commands.add_parser("build-embeddings", help="embed every vocabulary's terms once, for the workers")
    embed.add_argument("--cache", type=Path, default=None,
                       help="cache folder (default: NER_CONTEXT_CACHE or var/context_cache)")
    embed.add_argument("--prune", action="store_true", help="delete cache files that no current vocabulary uses")
    args = parser.parse_args(argv)
    if args.command == "build-embeddings":
        return embeddings_build(args.cache, prune=args.prune)
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


def embeddings_build(cache: Path | None, *, prune: bool = False) -> int:
    normaliser = Normaliser(embeddings="build", cache_directory=cache)
    used = set()
    for system in normaliser.embedding_systems():
        started = time.perf_counter()
        index = normaliser.embedding_index(system)
        terms = list(normaliser.vocabulary(system).exact)
        paths = cache_paths(normaliser.cache_directory, system, cache_key(system, terms, normaliser.encoder))
        used.update(paths)
        print(f"{system}: {len(index.matrix)} terms, {time.perf_counter() - started:.1f} s -> {paths[0]}", flush=True)
    if prune:
        for path in sorted(normaliser.cache_directory.glob("*")):
            if path.suffix in (".npy", ".json", ".terms") and path not in used:
                path.unlink()
                print(f"deleted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
