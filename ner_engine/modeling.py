"""The Prompt-bioMRC forward pass: soft prompts spliced into the encoder input, then an MRC span head.

Two query modes (`PromptBioMRCConfig.query_mode`):
  per_type  one encoder input per (text window, type): [CLS] <soft 1..K> PROMPT [SEP] CONTEXT [SEP]
  one_pass  one encoder input per text window for every type:
            [CLS] <marker_1> <soft_1 1..K> PROMPT_1 ... <marker_T> <soft_T 1..K> PROMPT_T [SEP] CONTEXT [SEP];
            each type's marker hidden state conditions (FiLM) the start / end / match heads over the context
            tokens, and an auxiliary per-type BIO head reads the same pass.
With `prompt_cache` (one_pass), prompt positions attend only to prompt positions, so their hidden states do
not depend on the text: they are computed once per batch (training) or once per template set (inference),
and the context tokens attend to [prompt keys/values ; their own].

Shapes: B batch, L sequence length, H encoder hidden size, W maximum span width (tokens), D match hidden size,
T entity types, K soft-prompt slots per type, P prompt block length ([CLS] prompts [SEP]), N context length
(text tokens + the closing [SEP]), h attention heads, d head size.
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
    query_mode: str = "per_type"           # per_type | one_pass (all types' prompts share one input)
    prompt_cache: bool = True              # one_pass: prompts attend only to prompts (text-independent, cached)
    bio_loss_weight: float = 0.0           # one_pass: auxiliary per-type BIO head on the same pass (0 = off)

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


@dataclass
class OnePassOutput:
    start_logits: torch.Tensor             # [B, T, N]
    end_logits: torch.Tensor               # [B, T, N]
    match_logits: torch.Tensor             # [B, T, N, W]: span (i, i + w) of type t
    bio_logits: Optional[torch.Tensor] = None   # [B, T, N, 3]: O / B / I per type
    loss: Optional[torch.Tensor] = None


QUERY_MODES = ("per_type", "one_pass")


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


class PromptBioMRC(nn.Module):
    def __init__(self, config: PromptBioMRCConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        hidden_size = encoder.config.hidden_size
        if config.query_mode not in QUERY_MODES:
            raise ValueError(f"query_mode must be one of {QUERY_MODES}, not {config.query_mode!r}")
        num_types = len(config.entity_types)
        self.soft_prompt = SoftPrompt(num_types, config.soft_prompt_length, hidden_size)
        self.head = SpanHead(hidden_size, config.max_span_width, config.match_hidden_size, config.dropout)
        self._prompt_cache: Optional[tuple] = None
        if config.query_mode == "one_pass":
            self.markers = nn.Parameter(torch.zeros(num_types, hidden_size))                 # [T, H]
            # FiLM from each type's marker state: gamma, beta start at 0, so the head starts type-agnostic
            # (e.g. from a per-type model's head) and learns the types' differences.
            self.film = nn.Linear(hidden_size, 2 * hidden_size)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
            self.bio = nn.Linear(hidden_size, 3)

    def train(self, mode: bool = True):
        self._prompt_cache = None  # weights are about to change (or just did): recompute the prompt states
        return super().train(mode)

    def input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def soft_prompt_init(self, token_ids_per_type: list[list[int]],
                         marker_ids_per_type: Optional[list[list[int]]] = None) -> None:
        """Start each type's soft vectors from the embeddings of its hard template's tokens (and, one_pass,
        each marker from the mean embedding of its anchor words)."""
        embeddings = self.input_embeddings().weight
        with torch.no_grad():
            for type_index, token_ids in enumerate(token_ids_per_type):
                if token_ids:
                    ids = torch.tensor(token_ids, device=embeddings.device)
                    self.soft_prompt.vectors[type_index, : len(token_ids)] = embeddings[ids]
            if marker_ids_per_type is not None and hasattr(self, "markers"):
                for type_index, token_ids in enumerate(marker_ids_per_type):
                    if token_ids:
                        ids = torch.tensor(token_ids, device=embeddings.device)
                        self.markers[type_index] = embeddings[ids].mean(dim=0)

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

    # ---- one pass: every type's prompt and the text in one encoder input ---------------------------------

    def prompt_embeddings(self, prompt_ids: torch.Tensor, prompt_slots: torch.Tensor) -> torch.Tensor:
        """prompt_ids [P] token ids of [CLS] prompts [SEP]; prompt_slots [P]: -1 for a token, t*(K+1) for
        type t's marker, t*(K+1)+1+k for its soft slot k -> [1, P, H] input embeddings."""
        words = self.input_embeddings()(prompt_ids)                                  # [P, H]
        table = torch.cat([self.markers.unsqueeze(1), self.soft_prompt.vectors], 1)  # [T, K+1, H]
        table = table.reshape(-1, table.shape[-1]).to(words.dtype)                   # [T*(K+1), H]
        learned = table[prompt_slots.clamp(min=0)]                                   # [P, H]
        slot = (prompt_slots >= 0).unsqueeze(-1)                                     # [P, 1]
        return torch.where(slot, learned, words).unsqueeze(0)                        # [1, P, H]

    def forward_one_pass(self, prompt_ids, prompt_slots, marker_positions, input_ids, attention_mask,
                         type_mask=None, start_labels=None, end_labels=None, match_labels=None,
                         bio_labels=None) -> OnePassOutput:
        """prompt_ids, prompt_slots [P] (shared by every row); marker_positions [T] (indices into the prompt
        block); input_ids, attention_mask [B, N]: context tokens and the closing [SEP] (0 = padding).
        Labels: type_mask [B, T] (1 = the row's corpus annotates type t; other types get no loss),
        start/end_labels [B, T, N], match_labels [B, T, N, W], bio_labels [B, T, N] (0 O, 1 B, 2 I)."""
        if self.config.prompt_cache:
            prompt_state, text_hidden = self._encode_cached(prompt_ids, prompt_slots, input_ids, attention_mask)
        else:
            prompt_state, text_hidden = self._encode_joint(prompt_ids, prompt_slots, input_ids, attention_mask)
        markers = prompt_state[:, marker_positions]                                  # [b, T, H]  (b = 1 or B)
        gamma, beta = self.film(markers).chunk(2, dim=-1)                            # [b, T, H] each
        conditioned = text_hidden.unsqueeze(1) * (1 + gamma.unsqueeze(2)) + beta.unsqueeze(2)  # [B, T, N, H]
        size, types, length, hidden = conditioned.shape
        start, end, match = self.head(conditioned.reshape(size * types, length, hidden))  # [B*T, N], [B*T, N], [B*T, N, W]
        output = OnePassOutput(start.view(size, types, length), end.view(size, types, length),     # [B, T, N]
                               match.view(size, types, length, -1),                               # [B, T, N, W]
                               self.bio(self.head.dropout(conditioned)))                           # [B, T, N, 3]
        if start_labels is not None:
            output.loss = self.loss_one_pass(output, attention_mask.bool(), type_mask, start_labels, end_labels,
                                             match_labels, bio_labels)
        return output

    def _encode_joint(self, prompt_ids, prompt_slots, input_ids, attention_mask):
        """Full attention over [CLS] prompts [SEP] text [SEP]: prompt states depend on the text."""
        size = input_ids.shape[0]
        prompt = self.prompt_embeddings(prompt_ids, prompt_slots).expand(size, -1, -1)  # [B, P, H]
        embeddings = torch.cat([prompt, self.input_embeddings()(input_ids)], dim=1)     # [B, P+N, H]
        length = prompt.shape[1]
        mask = torch.cat([attention_mask.new_ones(size, length), attention_mask], dim=1)  # [B, P+N]
        token_types = torch.cat([attention_mask.new_zeros(size, length), torch.ones_like(attention_mask)], 1)  # [B, P+N]
        hidden = self.encoder(inputs_embeds=embeddings, attention_mask=mask,
                              token_type_ids=token_types).last_hidden_state          # [B, P+N, H]
        return hidden[:, :length], hidden[:, length:]                                # [B, P, H], [B, N, H]

    def _bert_parts(self):
        encoder = self.encoder.get_base_model() if hasattr(self.encoder, "get_base_model") else self.encoder
        layers = getattr(getattr(encoder, "encoder", None), "layer", None)
        if layers is None or not hasattr(encoder, "embeddings"):
            raise ValueError(f"{self.config.backbone}: prompt_cache needs a BERT-style encoder; set prompt_cache=false")
        return encoder.embeddings, layers

    def _encode_cached(self, prompt_ids, prompt_slots, input_ids, attention_mask):
        """Prompts attend to prompts only; text attends to [prompts ; text]. The prompt block is encoded once
        (batch of 1), and in eval mode kept until the prompts or the weights change."""
        embeddings, layers = self._bert_parts()
        key = (tuple(prompt_ids.tolist()), tuple(prompt_slots.tolist()))
        if not self.training and self._prompt_cache is not None and self._prompt_cache[0] == key:
            prompt_state, prompt_kv = self._prompt_cache[1]
        else:
            length = prompt_ids.shape[0]
            positions = torch.arange(length, device=prompt_ids.device).unsqueeze(0)            # [1, P]
            hidden = embeddings(inputs_embeds=self.prompt_embeddings(prompt_ids, prompt_slots),
                                token_type_ids=torch.zeros_like(positions), position_ids=positions)  # [1, P, H]
            prompt_kv = []
            for layer in layers:
                key_value = _layer_key_value(layer, hidden)                                    # 2 x [1, h, P, d]
                prompt_kv.append(key_value)
                hidden = _layer_forward(layer, hidden, key_value, None, self.training)         # [1, P, H]
            prompt_state = hidden
            if not self.training and not torch.is_grad_enabled():
                self._prompt_cache = (key, (prompt_state, prompt_kv))
        size, length = input_ids.shape
        offset = prompt_ids.shape[0]
        positions = torch.arange(offset, offset + length, device=input_ids.device).expand(size, -1)  # [B, N]
        hidden = embeddings(input_ids=input_ids, token_type_ids=torch.ones_like(input_ids),
                            position_ids=positions)                                           # [B, N, H]
        # Every text token sees every prompt position and the unpadded text positions.
        mask = torch.cat([attention_mask.new_ones(size, offset), attention_mask], 1).bool()   # [B, P+N]
        mask = mask[:, None, None, :]                                                         # [B, 1, 1, P+N]
        for layer, (prompt_key, prompt_value) in zip(layers, prompt_kv):
            own_key, own_value = _layer_key_value(layer, hidden)                              # 2 x [B, h, N, d]
            key_value = (torch.cat([prompt_key.expand(size, -1, -1, -1), own_key], 2),        # [B, h, P+N, d]
                         torch.cat([prompt_value.expand(size, -1, -1, -1), own_value], 2))    # [B, h, P+N, d]
            hidden = _layer_forward(layer, hidden, key_value, mask, self.training)            # [B, N, H]
        return prompt_state, hidden                                                           # [1, P, H], [B, N, H]

    def loss_one_pass(self, output: OnePassOutput, valid: torch.Tensor, type_mask: torch.Tensor,
                      start_labels, end_labels, match_labels, bio_labels=None) -> torch.Tensor:
        """Partial labels: type t of row b contributes only when type_mask[b, t] (its corpus annotates t)."""
        weights = valid.unsqueeze(1) & type_mask.bool().unsqueeze(-1)                 # [B, T, N]
        start_loss = _masked_bce(output.start_logits, start_labels.float(), weights.float())
        end_loss = _masked_bce(output.end_logits, end_labels.float(), weights.float())
        width = self.config.max_span_width
        start_candidates = (start_labels.bool() | (output.start_logits > 0)) & weights   # [B, T, N]
        end_candidates = (end_labels.bool() | (output.end_logits > 0)) & weights         # [B, T, N]
        end_band = F.pad(end_candidates, (0, width - 1)).unfold(-1, width, 1)           # [B, T, N, W]
        candidates = start_candidates.unsqueeze(-1) & end_band                           # [B, T, N, W]
        match_loss = _masked_bce(output.match_logits, match_labels.float(), candidates.float())
        config = self.config
        loss = (config.start_loss_weight * start_loss + config.end_loss_weight * end_loss
                + config.match_loss_weight * match_loss)
        if config.bio_loss_weight > 0 and bio_labels is not None:
            bio = F.cross_entropy(output.bio_logits.float().flatten(0, 2), bio_labels.flatten(),
                                  reduction="none").view_as(bio_labels)                  # [B, T, N]
            loss = loss + config.bio_loss_weight * (bio * weights).sum() / weights.sum().clamp(min=1)
        return loss

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


def _layer_key_value(layer, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A BERT layer's keys and values for `hidden` [B, L, H] -> 2 x [B, h, L, d]."""
    attention = layer.attention.self
    heads = attention.num_attention_heads
    size, length, _ = hidden.shape
    key = attention.key(hidden).view(size, length, heads, -1).transpose(1, 2)        # [B, h, L, d]
    value = attention.value(hidden).view(size, length, heads, -1).transpose(1, 2)    # [B, h, L, d]
    return key, value


def _layer_forward(layer, hidden: torch.Tensor, key_value: tuple[torch.Tensor, torch.Tensor],
                   mask: Optional[torch.Tensor], training: bool) -> torch.Tensor:
    """One BERT layer (post-LayerNorm) for queries `hidden` [B, Lq, H] over given keys/values [B, h, Lk, d];
    mask [B, 1, 1, Lk] (True = attend) or None. Same weights and arithmetic as transformers' BertLayer."""
    attention = layer.attention.self
    size, length, width = hidden.shape
    heads = attention.num_attention_heads
    query = attention.query(hidden).view(size, length, heads, -1).transpose(1, 2)    # [B, h, Lq, d]
    context = F.scaled_dot_product_attention(query, key_value[0], key_value[1], attn_mask=mask,
                                             dropout_p=attention.dropout.p if training else 0.0)  # [B, h, Lq, d]
    context = context.transpose(1, 2).reshape(size, length, width)                    # [B, Lq, H]
    out = layer.attention.output
    hidden = out.LayerNorm(out.dropout(out.dense(context)) + hidden)                  # [B, Lq, H]
    inner = layer.intermediate(hidden)                                                # [B, Lq, 4H]
    out = layer.output
    return out.LayerNorm(out.dropout(out.dense(inner)) + hidden)                      # [B, Lq, H]


def _masked_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


def lora_apply(model: PromptBioMRC) -> PromptBioMRC:
    """Freeze the encoder and add LoRA adapters; soft prompts and the span head stay trainable."""
    if model.config.lora_rank <= 0:
        return model
    from peft import LoraConfig, get_peft_model  # optional: only LoRA configs need peft

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
