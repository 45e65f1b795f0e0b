"""Reviewed consultations as training data for `python -m ner_engine train --train jsonl:FILE`."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from consult.selectors.training import reviewed_documents
from consult.vocabulary import REVIEW_TYPES



class Command(BaseCommand):
    help = ("Write every consultation marked reviewed as ner_engine JSON-lines documents (one per patient "
            "message; spans = accepted + corrected + added mentions, rejected ones left out).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", required=True, help="File to write (replaced atomically).")
        parser.add_argument("--types", default=",".join(REVIEW_TYPES),
                            help="Comma-separated entity types the reviewers annotated (default: all).")

    def handle(self, *args, output: str, types: str, **options) -> None:
        wanted = tuple(t.strip().upper() for t in types.split(",") if t.strip())
        unknown = sorted(set(wanted) - set(REVIEW_TYPES))
        if not wanted or unknown:
            raise CommandError(f"--types: unknown or empty ({', '.join(unknown)}); known: "
                               f"{', '.join(REVIEW_TYPES)}")
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written next to the target and renamed, so a training run never reads a half-written file.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        documents = spans = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                for document in reviewed_documents(types=wanted):
                    handle.write(json.dumps(document, ensure_ascii=False) + "\n")
                    documents += 1
                    spans += len(document["spans"])
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        self.stdout.write(self.style.SUCCESS(f"Wrote {documents} documents with {spans} spans to {path}"))
