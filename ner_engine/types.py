"""Plain data types shared by every stage of the pipeline (readers -> triplets -> model -> decoding -> evaluation)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CORE_TYPES: tuple[str, ...] = ("SYMPTOM", "DISEASE", "DRUG")
OPTIONAL_TYPES: tuple[str, ...] = ("ANATOMY", "DURATION", "SEVERITY")
ENTITY_TYPES: tuple[str, ...] = CORE_TYPES + OPTIONAL_TYPES


@dataclass(frozen=True, order=True)
class Span:
    """A gold or predicted mention: character offsets into its document's text, end exclusive."""

    start: int
    end: int
    type: str


@dataclass
class Document:
    """One unit of text with its annotations; `types` lists the entity types the source annotates."""

    id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    types: tuple[str, ...] = ()

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]


@dataclass
class Entity:
    """What the extractor returns for one mention. `text == message[start:end]` always holds."""

    start: int
    end: int
    type: str
    text: str
    score: float
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("attributes")
        data.update(extra)
        return data
