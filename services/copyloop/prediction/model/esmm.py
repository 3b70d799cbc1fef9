"""ESMM multi-task CTR/CVR model on a DCN-v2 body (PyTorch), small enough for CPU serving.

ESMM (Ma et al., SIGIR 2018): pCTCVR = pCTR x pCVR. The CVR tower never sees a loss of its
own; it is learned over *all* impressions through the CTCVR loss, which avoids the sample
selection bias of training CVR on clicked impressions only and the sparsity of clicks.
DCN-v2 (Wang et al., 2021) low-rank cross layers model explicit feature interactions cheaply;
a small MLP on top models the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from copyloop.prediction.features.encoder import BAGS, FeatureEncoder
from copyloop.prediction.features.prior import DEFAULT_CVR


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; saved with the state dict so a version can be rebuilt."""

    embed_dim: int = 4
    text_proj_dim: int = 16
    cross_layers: int = 2
    cross_rank: int = 16
    deep_dims: tuple[int, ...] = (64,)
    tower_dims: tuple[int, ...] = (16,)
    dropout: float = 0.0
    field_dropout: float = 0.0  # training only: drop whole categorical fields (per row)
    # The CTR logit is the cold-start prior's logit (features.prior, an input) plus what the
    # network adds, which starts at 0 (the CVR tower at the prior's constant): a model trained
    # on a few clicks corrects the prior instead of relearning it. False for versions saved
    # before it existed.
    prior_offset: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["deep_dims"] = tuple(data["deep_dims"])
        data["tower_dims"] = tuple(data["tower_dims"])
        data.setdefault("prior_offset", False)
        return cls(**data)


@dataclass(frozen=True)
class InputDims:
    """Sizes of the encoder's outputs the model is built for."""

    n_cat: int
    table_size: int
    bag_buckets: dict[str, int]
    n_dense: int
    text_dim: int

    @classmethod
    def of(cls, encoder: FeatureEncoder) -> InputDims:
        return cls(
            encoder.n_cat,
            encoder.table_size,
            encoder.config.bag_buckets(),
            encoder.n_dense,
            encoder.text_dim,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_weights(ids: torch.Tensor) -> torch.Tensor:
    """Per-id weights that turn a sum-bag into the mean over non-padding ids (id 0 = padding).

    Measured 6x faster on CPU than EmbeddingBag(mode="mean", padding_idx=0), same result.
    """
    mask = (ids > 0).to(torch.float32)
    return mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def embedding_bags(bags: nn.ModuleDict) -> list[nn.EmbeddingBag]:
    """The bags of a ModuleDict as EmbeddingBags (ModuleDict only promises Modules)."""
    found = [bag for bag in bags.values() if isinstance(bag, nn.EmbeddingBag)]
    assert len(found) == len(bags), "every bag is an nn.EmbeddingBag"
    return found


class CrossLayer(nn.Module):
    """DCN-v2 low-rank cross: x_{l+1} = x0 * (U (V^T x_l) + b) + x_l."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        crossed: torch.Tensor = x0 * self.up(self.down(x)) + x
        return crossed


def _mlp(in_dim: int, dims: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for out_dim in dims:
        layers += [nn.Linear(in_dim, out_dim), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = out_dim
    return nn.Sequential(*layers), in_dim


# The prior's P(purchase | click) as a logit: where the CVR tower starts with `prior_offset`
# (the same for every row, so pCTCVR first ranks as the prior's pCTR does).
DEFAULT_CVR_LOGIT = math.log(DEFAULT_CVR / (1.0 - DEFAULT_CVR))

# Feature groups the first layer sees, in order; attribution reports contributions per group.
INPUT_PARTS: tuple[str, ...] = ("fields", *BAGS, "text", "dense")


class EsmmModel(nn.Module):
    """Shared embedding + DCN-v2 body, CTR and CVR towers; forward returns the two logits."""

    def __init__(self, dims: InputDims, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.dims = dims
        self.config = config
        d = config.embed_dim
        # Sparse gradients: a minibatch touches a few thousand of the ~10^5 hashed rows, so
        # only those rows are updated (SparseAdam), which keeps CPU training fast.
        self.embedding = nn.Embedding(dims.table_size, d, sparse=True)
        self.bags = nn.ModuleDict(
            {
                name: nn.EmbeddingBag(dims.bag_buckets[name], d, mode="sum", sparse=True)
                for name in BAGS
            }
        )
        self.text_proj = nn.Linear(dims.text_dim, config.text_proj_dim)
        width = dims.n_cat * d + len(BAGS) * d + config.text_proj_dim + dims.n_dense
        self.cross = nn.ModuleList(
            CrossLayer(width, config.cross_rank) for _ in range(config.cross_layers)
        )
        self.deep, deep_out = _mlp(width, config.deep_dims, config.dropout)
        ctr_body, tower_out = _mlp(deep_out, config.tower_dims, config.dropout)
        cvr_body, _ = _mlp(deep_out, config.tower_dims, config.dropout)
        self.ctr_tower = nn.Sequential(ctr_body, nn.Linear(tower_out, 1))
        self.cvr_tower = nn.Sequential(cvr_body, nn.Linear(tower_out, 1))
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.01)
        for bag in embedding_bags(self.bags):
            nn.init.normal_(bag.weight, std=0.01)
            with torch.no_grad():
                bag.weight[0].zero_()
        if self.config.prior_offset:  # the untrained model predicts exactly the prior
            for tower, bias in ((self.ctr_tower, 0.0), (self.cvr_tower, DEFAULT_CVR_LOGIT)):
                output = tower[-1]
                assert isinstance(output, nn.Linear)
                nn.init.zeros_(output.weight)
                nn.init.constant_(output.bias, bias)

    def sparse_parameters(self) -> list[torch.Tensor]:
        return [self.embedding.weight, *(bag.weight for bag in embedding_bags(self.bags))]

    def dense_parameters(self) -> list[nn.Parameter]:
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]

    def embed(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-group first-layer inputs; attribution takes gradients with respect to these."""
        fields = self.embedding(inputs["cat"])  # [B, F, d]
        if self.training and self.config.field_dropout > 0:
            keep = torch.rand(fields.shape[:2], device=fields.device) >= self.config.field_dropout
            fields = fields * keep.unsqueeze(-1) / (1.0 - self.config.field_dropout)
        parts = {"fields": fields}
        parts.update(
            {
                name: bag(inputs[name], per_sample_weights=mean_weights(inputs[name]))
                for name, bag in self.bags.items()
            }
        )
        parts["text"] = self.text_proj(inputs["text"])  # projected: attribution stays cheap
        parts["dense"] = inputs["dense"]
        if self.config.prior_offset and "prior" in inputs:  # absent: an offset of 0
            parts["prior"] = inputs["prior"]
        return parts

    def head(self, parts: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        fields = parts["fields"]
        x0 = torch.cat(
            [
                fields.reshape(fields.shape[0], -1),
                *(parts[name] for name in BAGS),
                parts["text"],
                parts["dense"],
            ],
            dim=1,
        )
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        hidden = self.deep(x)
        ctr = self.ctr_tower(hidden).squeeze(-1)
        if "prior" in parts:
            ctr = ctr + parts["prior"]
        return ctr, self.cvr_tower(hidden).squeeze(-1)

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.embed(inputs))


def esmm_loss(
    ctr_logit: torch.Tensor,
    cvr_logit: torch.Tensor,
    clicked: torch.Tensor,
    converted: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """BCE(pCTR, click) + BCE(pCTR*pCVR, click & conversion), both over all impressions.

    `weight` (per impression, e.g. clipped inverse propensities from `propensity_weights`)
    turns both means into weighted means; None keeps the plain loss exactly.
    """
    log_ctcvr = F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)
    log_not_ctcvr = torch.log1p(-torch.exp(log_ctcvr).clamp(max=1.0 - 1e-7))
    ctcvr_terms = -(converted * log_ctcvr + (1.0 - converted) * log_not_ctcvr)
    if weight is None:
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, clicked)
        return ctr_loss + ctcvr_terms.mean()
    ctr_terms = F.binary_cross_entropy_with_logits(ctr_logit, clicked, reduction="none")
    return (weight * (ctr_terms + ctcvr_terms)).mean()


def propensity_weights(propensity: torch.Tensor, clip: float) -> torch.Tensor | None:
    """Per-impression loss weights from logged propensities (0 = unknown), or None when none
    is known (the plain loss).

    Inverse propensity weighting makes the loss an estimate of the loss under the uniform
    choice among the logged options, so copies the serving policy rarely picks are not
    under-learned; clipping at `clip` bounds the variance a tiny propensity would add, and
    normalising the known rows to mean 1 keeps the loss scale (and learning rate) unchanged.
    Unknown rows weigh 1.
    """
    known = propensity > 0
    if not bool(known.any()):
        return None
    inverse = torch.where(known, 1.0 / propensity.clamp(min=1e-12), torch.ones_like(propensity))
    clipped = inverse.clamp(max=clip)
    scaled = clipped / clipped[known].mean()
    return torch.where(known, scaled, torch.ones_like(propensity)).to(torch.float32)


_GROUP_NAMES = {
    "segments": "user_segments",
    "segment_style": "x_segments_style",
    "ngrams": "copy_ngrams",
    "text": "copy_embedding",
}


def clicked_cvr_loss(
    cvr_logit: torch.Tensor, clicked: torch.Tensor, converted: torch.Tensor
) -> torch.Tensor:
    """BCE(pCVR, purchase) over clicked impressions only: an optional auxiliary signal for the
    CVR tower (plain ESMM trains it through the CTCVR loss alone)."""
    mask = clicked > 0
    if not bool(mask.any()):
        return cvr_logit.sum() * 0.0
    return F.binary_cross_entropy_with_logits(cvr_logit[mask], converted[mask])


def attribute_groups(
    model: EsmmModel,
    inputs: dict[str, torch.Tensor],
    dense_groups: list[tuple[str, list[int]]],
    field_names: tuple[str, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Logits plus gradient x input of log(pCTCVR) summed over each feature group.

    Rows are independent, so one backward pass over the batch sum gives every row's gradient.
    Gradient x input is a first-order (local) attribution: a positive value means the feature
    group, as set, pushes this candidate's pCTR x pCVR up. Returns (ctr_logit, cvr_logit,
    contributions [B, G], group names).
    """
    with torch.no_grad():
        embedded = model.embed(inputs)
    with torch.enable_grad():
        parts = {k: v.detach().clone().requires_grad_(True) for k, v in embedded.items()}
        ctr_logit, cvr_logit = model.head(parts)
        objective = (F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)).sum()
        grads = torch.autograd.grad(objective, [parts[k] for k in INPUT_PARTS])
    grad = dict(zip(INPUT_PARTS, grads, strict=True))
    columns = [(parts["fields"] * grad["fields"]).sum(-1)]  # [B, F]
    names = list(field_names)
    for name in (*BAGS, "text"):
        columns.append((parts[name] * grad[name]).sum(-1, keepdim=True))
    names += [_GROUP_NAMES.get(name, name) for name in (*BAGS, "text")]
    membership = torch.zeros(parts["dense"].shape[1], len(dense_groups))
    for group, (name, cols) in enumerate(dense_groups):
        membership[cols, group] = 1.0
        names.append(name)
    columns.append((parts["dense"] * grad["dense"]) @ membership)  # all dense groups in one matmul
    return ctr_logit.detach(), cvr_logit.detach(), torch.cat(columns, dim=1).detach(), names
