"""The Prompt-bioMRC forward pass: soft prompts spliced into the encoder input, then an MRC span head.

Shapes: B batch, L sequence length, H encoder hidden size, W maximum span width (tokens), D match hidden size,
T entity types, K soft-prompt slots per type.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ner_engine.backbones import DEFAULT_BACKBONE


@dataclass
class PromptBioMRCConfig:
    backbone: str = DEFAULT_BACKBONE
    entity_types: list[str] = field(default_factory=lambda: ["SYMPTOM", "DISEASE", "DRUG"])
    prompt_mode: str = "hybrid"            # plain | hard | soft | hybrid
    soft_prompt_length: int = 8
    max_span_width: int = 16               # tokens; longer mentions are not predicted
    decode_threshold: float = 0.5          # start, end and match probabilities must each pass it (tuned on dev)
    match_hidden_size: int = 128
    dropout: float = 0.1
    start_loss_weight: float = 1.0
    end_loss_weight: float = 1.0
    match_loss_weight: float = 1.0
    max_length: int = 128
    window_overlap: int = 32
    lora_rank: int = 0                     # 0 = full fine-tuning; > 0 = LoRA adapters, encoder frozen
    lora_alpha: int = 32
    lora_targets: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    # Full fine-tuning only: parts of the encoder kept at their pretrained weights. Artifacts then need not
    # store them (the word embeddings alone are half of MiniLM), and training skips their weight gradients.
    freeze_embeddings: bool = False
    frozen_layers: int = 0                 # bottom transformer layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PromptBioMRCConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class PromptBioMRCOutput:
    start_logits: torch.Tensor             # [B, L]
    end_logits: torch.Tensor               # [B, L]
    match_logits: torch.Tensor             # [B, L, W]: span (i, i + w)
    loss: Optional[torch.Tensor] = None


class SoftPrompt(nn.Module):
    """K learnable vectors per entity type, written over the embeddings of the soft slots in the input."""

    def __init__(self, num_types: int, length: int, hidden_size: int) -> None:
        super().__init__()
        self.vectors = nn.Parameter(torch.zeros(num_types, max(length, 1), hidden_size))  # [T, K, H]

    def forward(self, embeddings: torch.Tensor, soft_mask: torch.Tensor, type_ids: torch.Tensor) -> torch.Tensor:
        if not soft_mask.any():
            return embeddings
        slot = soft_mask.cumsum(dim=1) - 1                                       # [B, L] index of each soft slot
        slot = slot.clamp(min=0, max=self.vectors.shape[1] - 1)                  # [B, L]
        prompts = self.vectors[type_ids.unsqueeze(1).expand_as(slot), slot]      # [B, L, H]
        mask = soft_mask.unsqueeze(-1).to(embeddings.dtype)                      # [B, L, 1]
        return embeddings * (1 - mask) + prompts.to(embeddings.dtype) * mask     # [B, L, H]


class SpanHead(nn.Module):
    """MRC-NER span head (Li et al. 2020): start and end logits per token plus a start-end match score.

    The match score is computed only for spans up to W tokens wide (a band, not the full L x L matrix), which
    keeps memory linear in L on a CPU.
    """

    def __init__(self, hidden_size: int, max_span_width: int, match_hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.max_span_width = max_span_width
        self.dropout = nn.Dropout(dropout)
        self.start = nn.Linear(hidden_size, 1)
        self.end = nn.Linear(hidden_size, 1)
        self.match_start = nn.Linear(hidden_size, match_hidden_size)
        self.match_end = nn.Linear(hidden_size, match_hidden_size, bias=False)
        self.match_out = nn.Linear(match_hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.dropout(hidden)                                            # [B, L, H]
        start_logits = self.start(hidden).squeeze(-1)                            # [B, L]
        end_logits = self.end(hidden).squeeze(-1)                               # [B, L]
        width = self.max_span_width
        starts = self.match_start(hidden)                                        # [B, L, D]
        ends = self.match_end(hidden)                                            # [B, L, D]
        ends = F.pad(ends, (0, 0, 0, width - 1))                                 # [B, L + W - 1, D]
        ends = ends.unfold(1, width, 1).transpose(2, 3)                          # [B, L, W, D]: end token i + w
        pairs = F.gelu(starts.unsqueeze(2) + ends)                               # [B, L, W, D]
        match_logits = self.match_out(pairs).squeeze(-1)                         # [B, L, W]
        return start_logits, end_logits, match_logits


def band_mask(valid: torch.Tensor, width: int) -> torch.Tensor:
    """[B, L] token mask -> [B, L, W] mask of spans (i, i + w) whose both ends are valid tokens."""
    ends = F.pad(valid, (0, width - 1)).unfold(1, width, 1)                      # [B, L, W]
    return valid.unsqueeze(-1) & ends                                            # [B, L, W]


class PromptBioMRC(nn.Module):
    def __init__(self, config: PromptBioMRCConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        hidden_size = encoder.config.hidden_size
        self.soft_prompt = SoftPrompt(len(config.entity_types), config.soft_prompt_length, hidden_size)
        self.head = SpanHead(hidden_size, config.max_span_width, config.match_hidden_size, config.dropout)

    def input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def soft_prompt_init(self, token_ids_per_type: list[list[int]]) -> None:
        """Start each type's soft vectors from the embeddings of its hard template's tokens."""
        embeddings = self.input_embeddings().weight
        with torch.no_grad():
            for type_index, token_ids in enumerate(token_ids_per_type):
                if token_ids:
                    ids = torch.tensor(token_ids, device=embeddings.device)
                    self.soft_prompt.vectors[type_index, : len(token_ids)] = embeddings[ids]

    def forward(self, input_ids, attention_mask, token_type_ids, soft_mask, type_ids, context_mask,
                start_labels=None, end_labels=None, match_labels=None) -> PromptBioMRCOutput:
        embeddings = self.input_embeddings()(input_ids)                          # [B, L, H]
        embeddings = self.soft_prompt(embeddings, soft_mask.bool(), type_ids)     # [B, L, H]
        hidden = self.encoder(inputs_embeds=embeddings, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state    # [B, L, H]
        start_logits, end_logits, match_logits = self.head(hidden)               # [B, L], [B, L], [B, L, W]
        output = PromptBioMRCOutput(start_logits, end_logits, match_logits)
        if start_labels is not None:
            output.loss = self.loss(output, context_mask.bool(), start_labels, end_labels, match_labels)
        return output

    def loss(self, output: PromptBioMRCOutput, context_mask: torch.Tensor, start_labels: torch.Tensor,
             end_labels: torch.Tensor, match_labels: torch.Tensor) -> torch.Tensor:
        weights = context_mask.float()                                           # [B, L]
        start_loss = _masked_bce(output.start_logits, start_labels.float(), weights)
        end_loss = _masked_bce(output.end_logits, end_labels.float(), weights)
        # Match candidates as in MRC-NER: pairs whose start and end are each gold or predicted.
        width = self.config.max_span_width
        start_candidates = (start_labels.bool() | (output.start_logits > 0)) & context_mask   # [B, L]
        end_candidates = (end_labels.bool() | (output.end_logits > 0)) & context_mask         # [B, L]
        end_band = F.pad(end_candidates, (0, width - 1)).unfold(1, width, 1)                  # [B, L, W]
        candidates = start_candidates.unsqueeze(-1) & end_band                                # [B, L, W]
        match_loss = _masked_bce(output.match_logits, match_labels.float(), candidates.float())
        config = self.config
        return (config.start_loss_weight * start_loss + config.end_loss_weight * end_loss
                + config.match_loss_weight * match_loss)


def _masked_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


def lora_apply(model: PromptBioMRC) -> PromptBioMRC:
    """Freeze the encoder and add LoRA adapters; soft prompts and the span head stay trainable."""
    if model.config.lora_rank <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=model.config.lora_rank, lora_alpha=model.config.lora_alpha, lora_dropout=0.05,
                      target_modules=model.config.lora_targets, bias="none")
    model.encoder = get_peft_model(model.encoder, lora)
    return model


def encoder_freeze(model: PromptBioMRC) -> PromptBioMRC:
    """Keep the embeddings and/or the bottom `frozen_layers` transformer layers at their pretrained weights."""
    config = model.config
    if config.lora_rank > 0 or not (config.freeze_embeddings or config.frozen_layers):
        return model
    encoder = model.encoder
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None or not hasattr(encoder, "embeddings"):
        raise ValueError(f"{config.backbone}: freezing needs a BERT-style encoder (embeddings + encoder.layer)")
    if config.frozen_layers > len(layers):
        raise ValueError(f"frozen_layers={config.frozen_layers} but the encoder has {len(layers)} layers")
    frozen = ([encoder.embeddings] if config.freeze_embeddings else []) + list(layers[: config.frozen_layers])
    for module in frozen:
        module.requires_grad_(False)
    return model


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what training changed: the whole model for full fine-tuning, adapters + prompts + head for LoRA."""
    names = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    return {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items() if name in names}
