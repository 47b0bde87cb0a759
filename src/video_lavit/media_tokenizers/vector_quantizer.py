"""The l2-normalised VQ codebook shared by the motion tokenizer (1024 x 32) and the keyframe tokenizer (16384 x 32).

Implements the reference's `VectorQuantizer` (used by the motion and the keyframe tokenizers): inputs are
l2-normalised, the index is the nearest code by squared L2 distance (computed as |z|^2 + |e|^2 - 2 z.e, as the
reference does, so near-ties resolve identically), and the code is the codebook row as stored.

Our additions, for training (the reference released no training code): the VQ-VAE codebook and commitment losses
with a straight-through estimator, an optional exponential-moving-average codebook update (the reference's
constructor carries an unused decay of 0.99), and restarting dead codes from random inputs of the batch. The API
follows the common quantizer trio: `encode -> (quantized, indices, loss)`, `indices_to_codes(indices)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError


@dataclass
class QuantizerOutput:
    """Result of `VectorQuantizer.encode`.

    Attributes:
        quantized (`torch.Tensor`): `[..., code_dim]` codes, with straight-through gradients to the input in training.
        indices (`torch.LongTensor`): `[...]` code indices.
        loss (`torch.Tensor`): scalar codebook + weighted commitment loss (0 when the codebook is updated by EMA).
        perplexity (`torch.Tensor`): scalar exp(entropy) of the code usage in the batch.
    """

    quantized: torch.Tensor
    indices: torch.LongTensor
    loss: torch.Tensor
    perplexity: torch.Tensor


class VectorQuantizer(nn.Module):
    """l2-normalised nearest-neighbour vector quantizer.

    Args:
        num_codes (`int`): codebook size.
        code_dim (`int`): code width.
        commitment_weight (`float`): weight of the commitment loss in training.
        use_ema (`bool`): update the codebook by exponential moving averages instead of by gradients.
        ema_decay (`float`): decay of those averages.
        dead_code_threshold (`float`): in training, codes used fewer times than this (EMA count, or in the batch
            without EMA) are replaced by random inputs of the batch; 0 turns restarts off.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        commitment_weight: float = 0.25,
        use_ema: bool = False,
        ema_decay: float = 0.99,
        dead_code_threshold: float = 0.0,
    ):
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.commitment_weight = commitment_weight
        self.use_ema = use_ema
        self.ema_decay = ema_decay
        self.dead_code_threshold = dead_code_threshold
        self.embedding = nn.Embedding(num_codes, code_dim)
        with torch.no_grad():  # random l2-normalised codes, as the reference initialises them
            self.embedding.weight.copy_(F.normalize(self.embedding.weight, dim=-1))
        if use_ema:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer("ema_cluster_size", torch.zeros(num_codes), persistent=False)
            self.register_buffer("ema_embed_sum", torch.zeros(num_codes, code_dim), persistent=False)

    @property
    def codebook(self) -> torch.Tensor:
        return self.embedding.weight

    def indices_to_codes(self, indices: torch.LongTensor) -> torch.Tensor:
        """`[...]` code indices -> `[..., code_dim]` codes."""
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise InvalidInputError(
                f"code indices must lie in [0, {self.num_codes}), got {int(indices.min())}..{int(indices.max())}"
            )
        return self.embedding(indices)

    @torch.no_grad()
    def fit_kmeans(
        self, features: torch.Tensor, iterations: int = 20, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Set the codebook to spherical k-means centroids of `features` (a codebook initialisation for training).

        The l2-normalised features are clustered by cosine similarity (the nearest code of `nearest_codes`, since
        codes and inputs are unit vectors), starting from `num_codes` distinct features drawn with `generator`; a
        centroid left without features keeps its last value.

        Args:
            features (`torch.Tensor` `[..., code_dim]`): at least `num_codes` features.
            iterations (`int`): assignment and update rounds.
            generator (`torch.Generator`, *optional*): picks the starting features.

        Returns:
            `torch.LongTensor` `[...]`: the code index of each feature under the fitted codebook.
        """
        if features.shape[-1] != self.code_dim:
            raise InvalidInputError(f"features must be [..., {self.code_dim}], got {tuple(features.shape)}")
        features = features.to(self.embedding.weight.device)
        flat = F.normalize(features.reshape(-1, self.code_dim).float(), dim=-1)
        if len(flat) < self.num_codes:
            raise InvalidInputError(f"k-means of {self.num_codes} codes needs as many features, got {len(flat)}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise InvalidInputError(f"iterations must be a positive integer, got {iterations!r}")
        start = torch.randperm(len(flat), generator=generator, device=generator.device if generator else None)
        centroids = flat[start[: self.num_codes].to(flat.device)].clone()
        for _ in range(iterations):
            assignment = (flat @ centroids.T).argmax(dim=1)
            sums = torch.zeros_like(centroids).index_add_(0, assignment, flat)
            counts = torch.bincount(assignment, minlength=self.num_codes)
            used = counts > 0
            centroids[used] = F.normalize(sums[used], dim=-1)
        self.embedding.weight.copy_(centroids.to(self.embedding.weight.dtype))
        if self.use_ema:
            counts = torch.bincount(self.nearest_codes(flat), minlength=self.num_codes).float()
            self.ema_cluster_size.copy_(counts)
            self.ema_embed_sum.copy_(centroids * counts[:, None])
        return self.nearest_codes(features)

    def nearest_codes(self, features: torch.Tensor) -> torch.LongTensor:
        """`[..., code_dim]` features -> `[...]` index of the nearest code to the l2-normalised features."""
        flat = F.normalize(features, p=2, dim=-1).reshape(-1, self.code_dim)
        codebook = self.embedding.weight.to(flat.dtype)
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True)
            + codebook.pow(2).sum(dim=1)
            - 2 * torch.einsum("bd,nd->bn", flat, codebook)
        )
        return distances.argmin(dim=1).reshape(features.shape[:-1])

    def encode(self, features: torch.Tensor) -> QuantizerOutput:
        """Quantize `[..., code_dim]` features (see `QuantizerOutput`)."""
        indices = self.nearest_codes(features)
        quantized = self.embedding(indices).to(features.dtype)
        counts = torch.bincount(indices.reshape(-1), minlength=self.num_codes).to(torch.float32)
        probabilities = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(probabilities * torch.log(probabilities + 1e-10)).sum())
        loss = features.new_zeros((), dtype=torch.float32)
        if self.training and torch.is_grad_enabled():
            normalised = F.normalize(features, p=2, dim=-1)
            commitment = F.mse_loss(normalised.float(), quantized.detach().float())
            loss = self.commitment_weight * commitment
            if self.use_ema:
                self._ema_update(normalised.detach(), indices, counts)
            else:
                loss = loss + F.mse_loss(quantized.float(), normalised.detach().float())
            if self.dead_code_threshold > 0:
                self._restart_dead_codes(normalised.detach(), counts)
            # Straight-through: the forward value is the code, the gradient flows to the normalised features.
            quantized = normalised + (quantized - normalised).detach()
        return QuantizerOutput(quantized=quantized, indices=indices, loss=loss, perplexity=perplexity)

    @torch.no_grad()
    def _ema_update(self, normalised: torch.Tensor, indices: torch.LongTensor, counts: torch.Tensor) -> None:
        flat = normalised.reshape(-1, self.code_dim).float()
        embed_sum = torch.zeros_like(self.ema_embed_sum).index_add_(0, indices.reshape(-1), flat)
        self.ema_cluster_size.mul_(self.ema_decay).add_(counts, alpha=1 - self.ema_decay)
        self.ema_embed_sum.mul_(self.ema_decay).add_(embed_sum, alpha=1 - self.ema_decay)
        used = self.ema_cluster_size > 1e-5
        means = self.ema_embed_sum[used] / self.ema_cluster_size[used, None]
        self.embedding.weight.data[used] = F.normalize(means, dim=-1).to(self.embedding.weight.dtype)

    @torch.no_grad()
    def _restart_dead_codes(self, normalised: torch.Tensor, counts: torch.Tensor) -> None:
        usage = self.ema_cluster_size if self.use_ema else counts
        dead = (usage < self.dead_code_threshold).nonzero().flatten()
        if len(dead) == 0:
            return
        flat = normalised.reshape(-1, self.code_dim)
        picks = torch.randint(0, flat.shape[0], (len(dead),), device=flat.device)
        self.embedding.weight.data[dead] = flat[picks].to(self.embedding.weight.dtype)
        if self.use_ema:
            self.ema_cluster_size[dead] = 1.0
            self.ema_embed_sum[dead] = flat[picks].float()
