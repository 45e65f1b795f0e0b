"""Prompt-bioMRC: medical NER as machine reading comprehension. Pure Python; never imports Django."""
from ner_engine.types import CORE_TYPES, ENTITY_TYPES, Document, Entity, Span

__all__ = ["CORE_TYPES", "ENTITY_TYPES", "Document", "Entity", "Span", "Extractor"]


def __getattr__(name: str):
    # Lazy so that importing the data types does not import torch.
    if name == "Extractor":
        from ner_engine.extractor import Extractor

        return Extractor
    raise AttributeError(name)
