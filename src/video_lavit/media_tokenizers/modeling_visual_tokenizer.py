"""The Video-LaVIT keyframe tokenizer: images `[B, 3, 224, 224]` -> a dynamic number (up to 256) of tokens each.

Implements LaVIT's dynamic visual tokenizer (paper section 3.1, "keyframe tokenizer"; reference
`modeling_visual_tokenzier.py` and `modeling_visual_encoder.py`):

1. a frozen EVA-CLIP ViT-g/14 gives 256 patch features (output of the last block, no final norm, CLS dropped);
2. the token predictor scores each patch (keep / drop log-probabilities, from its own features and their mean);
3. a keep decision per patch: the reference samples it (`gumbel_softmax(hard=True)`), so the number of tokens
   varies from run to run;
4. the token merger (12 blocks) lets every token attend causally to the kept tokens before it, and cross-attend to
   the LayerNorm'ed ViT features of the dropped tokens, so their information flows into the kept ones;
5. kept tokens -> `language_projection` (continuous features for the understanding LM), or -> Linear-Tanh-Linear ->
   the l2-normalised 16384 x 32 codebook (discrete codes for the generation LM).

Differences from the reference:
- `selection="argmax"` (keep a patch when its keep score is the larger) is our deterministic mode and the default;
  `selection="sample"` is the reference's Gumbel sampling, drawn with `torch.Generator` when given (with the global
  generator it consumes the same random numbers as the reference's `F.gumbel_softmax`, so a seed reproduces it);
- a batch is processed as a whole: kept tokens are packed to the left of a padded `[batch, max_kept, ...]` tensor
  with a per-image count, instead of a Python list of tensors;
- the continuous and code projections run on kept tokens only (the same values, less work);
- the ViT attention runs through SDPA; the merger keeps the reference's policy softmax (`layers.policy_attention`),
  which differs from a masked softmax by its epsilon terms and is needed when every token is kept;
- training (ours; the reference released none): `forward` returns the VQ losses with a straight-through estimator,
  optionally a keep-ratio loss, and the quantized codes for a reconstruction loss through
  `VideoLaVITVisualTokenDecoder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from ..checks import check_finite
from ..errors import InvalidInputError
from ..loading import StrictPreTrainedMixin
from .configuration_visual_tokenizer import VideoLaVITVisualTokenizerConfig
from .layers import Fp32LayerNorm, FusionBlock, Mlp, QVBiasSelfAttention, TanhProjection, init_tokenizer_weights
from .vector_quantizer import VectorQuantizer

Selection = Literal["argmax", "sample"]


class EvaVisionEmbeddings(nn.Module):
    """Patch embedding (a stride-p convolution), a CLS token, and learned absolute positions."""

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__()
        hidden = config.vision_hidden_size
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, hidden))
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_patches + 1, hidden))
        self.patch_embedding = nn.Conv2d(
            config.num_channels, hidden, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`pixel_values` `[batch, 3, H, W]` -> `[batch, 1 + num_patches, hidden]`."""
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # b c h w -> b (h w) c
        class_tokens = self.class_embedding.expand(patches.shape[0], -1, -1)
        return torch.cat([class_tokens, patches], dim=1) + self.position_embedding


class EvaLayer(GradientCheckpointingLayer):
    """Pre-norm ViT block: q/v-biased self-attention and a GELU MLP."""

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__()
        hidden = config.vision_hidden_size
        self.layer_norm1 = Fp32LayerNorm(hidden, eps=config.vision_layer_norm_eps)
        self.self_attn = QVBiasSelfAttention(hidden, config.vision_num_attention_heads)
        self.layer_norm2 = Fp32LayerNorm(hidden, eps=config.vision_layer_norm_eps)
        self.mlp = Mlp(hidden, config.vision_intermediate_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states))
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class EvaVisionTransformer(nn.Module):
    """EVA-CLIP ViT-g/14 with its CLIP head (`post_layernorm` + `head`, used only by `get_image_embeddings`)."""

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__()
        self.embeddings = EvaVisionEmbeddings(config)
        self.layers = nn.ModuleList(EvaLayer(config) for _ in range(config.vision_num_hidden_layers))
        self.post_layernorm = Fp32LayerNorm(config.vision_hidden_size, eps=config.vision_layer_norm_eps)
        self.head = nn.Linear(config.vision_hidden_size, config.vision_projection_dim)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`pixel_values` `[batch, 3, H, W]` -> the last block's output `[batch, 1 + num_patches, hidden]`."""
        hidden_states = self.embeddings(pixel_values)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class TokenPredictor(nn.Module):
    """Scores every patch: log-probabilities of (keep, drop) from its local features and the image's mean."""

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__()
        hidden = config.vision_hidden_size
        self.layer_norm = Fp32LayerNorm(hidden, eps=config.merger_layer_norm_eps)
        self.in_proj = nn.Linear(hidden, hidden)
        self.fc1 = nn.Linear(hidden, hidden // 2)
        self.fc2 = nn.Linear(hidden // 2, hidden // 4)
        self.fc3 = nn.Linear(hidden // 4, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """`features` `[batch, N, hidden]` -> log-probabilities `[batch, N, 2]` (index 0 = keep)."""
        hidden_states = F.gelu(self.in_proj(self.layer_norm(features)))
        local_part, global_part = hidden_states.chunk(2, dim=-1)
        global_part = global_part.mean(dim=1, keepdim=True).expand_as(global_part)
        hidden_states = torch.cat([local_part, global_part], dim=-1)
        hidden_states = F.gelu(self.fc2(F.gelu(self.fc1(hidden_states))))
        return F.log_softmax(self.fc3(hidden_states), dim=-1)


class TokenMerger(nn.Module):
    """Blocks of causal policy self-attention among tokens and cross-attention to the dropped ViT features."""

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__()
        hidden = config.vision_hidden_size
        self.vision_layer_norm = Fp32LayerNorm(hidden, eps=config.merger_layer_norm_eps)
        self.layers = nn.ModuleList(
            FusionBlock(
                hidden,
                config.merger_num_attention_heads,
                config.merger_intermediate_size,
                config.merger_layer_norm_eps,
            )
            for _ in range(config.merger_num_hidden_layers)
        )
        self.post_layernorm = Fp32LayerNorm(hidden, eps=config.merger_layer_norm_eps)

    def forward(self, features: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """`features` `[batch, N, hidden]` (ViT), `keep` `[batch, N]` in {0, 1} -> merged `[batch, N, hidden]`."""
        num_tokens = features.shape[1]
        keep = keep.to(features.dtype)
        eye = torch.eye(num_tokens, dtype=keep.dtype, device=keep.device)
        causal = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=keep.device).tril()
        # Token i attends to the kept tokens j <= i, and always to itself.
        self_policy = (keep[:, None, None, :] + (1 - keep[:, None, None, :]) * eye) * causal  # b 1 n n
        # Every token attends to the ViT features of the dropped tokens only.
        cross_policy = (1 - keep)[:, None, None, :]  # b 1 1 n
        context = self.vision_layer_norm(features)
        hidden_states = features
        for layer in self.layers:
            hidden_states = layer(
                hidden_states, context, self_attention_policy=self_policy, cross_attention_policy=cross_policy
            )
        return self.post_layernorm(hidden_states)


def pack_kept_tokens(values: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the kept tokens of each row to the left, in their original order.

    Args:
        values (`torch.Tensor` `[batch, N, channels]`), keep (`torch.BoolTensor` `[batch, N]`).

    Returns:
        `[batch, max_kept, channels]` with zeros after each row's tokens, and the `[batch, max_kept]` bool mask of
        real tokens.
    """
    num_kept = keep.sum(dim=1)
    max_kept = int(num_kept.max()) if keep.numel() else 0
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :max_kept]  # kept first, stable order
    packed = values.gather(1, order[..., None].expand(-1, -1, values.shape[-1]))
    mask = torch.arange(max_kept, device=keep.device)[None, :] < num_kept[:, None]
    return packed.masked_fill(~mask[..., None], 0), mask


@dataclass
class VisualTokenizerOutput(ModelOutput):
    """Output of `VideoLaVITVisualTokenizer.encode_features`, `tokenize` and `forward`.

    Per image `i`, `num_tokens[i]` tokens are kept; the token axis of `features`, `indices` and `quantized` is
    padded to the largest count in the batch, `attention_mask` marks the real tokens.

    Attributes:
        loss (`torch.Tensor`, training only): quantizer loss (+ weighted keep-ratio loss when asked for).
        features (`torch.Tensor` `[batch, max_kept, language_hidden_size]`): continuous features
            (`encode_features`), zeros at padding.
        indices (`torch.LongTensor` `[batch, max_kept]`): code indices (`tokenize` / `forward`), -1 at padding.
        quantized (`torch.Tensor` `[batch, max_kept, code_dim]`): the codes (straight-through in training).
        attention_mask (`torch.BoolTensor` `[batch, max_kept]`): True at real tokens.
        num_tokens (`torch.LongTensor` `[batch]`): kept tokens per image.
        keep_mask (`torch.BoolTensor` `[batch, num_patches]`): which patches were kept.
        token_log_probs (`torch.Tensor` `[batch, num_patches, 2]`): the predictor's (keep, drop) log-probabilities.
        quantizer_loss (`torch.Tensor`), keep_ratio_loss (`torch.Tensor`), perplexity (`torch.Tensor`): training.
    """

    loss: torch.Tensor | None = None
    features: torch.Tensor | None = None
    indices: torch.LongTensor | None = None
    quantized: torch.Tensor | None = None
    attention_mask: torch.BoolTensor | None = None
    num_tokens: torch.LongTensor | None = None
    keep_mask: torch.BoolTensor | None = None
    token_log_probs: torch.Tensor | None = None
    quantizer_loss: torch.Tensor | None = None
    keep_ratio_loss: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None

    def split(self, name: str = "indices") -> list[torch.Tensor]:
        """The per-image unpadded tensors of field `name` (`features`, `indices` or `quantized`)."""
        values = getattr(self, name)
        if values is None:
            raise InvalidInputError(f"this output has no {name!r}")
        return [row[:count] for row, count in zip(values, self.num_tokens.tolist())]


class VideoLaVITVisualTokenizerPreTrainedModel(StrictPreTrainedMixin, PreTrainedModel):
    config_class = VideoLaVITVisualTokenizerConfig
    base_model_prefix = "visual_tokenizer"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["EvaLayer", "FusionBlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if not init_tokenizer_weights(module, std) and isinstance(module, EvaVisionEmbeddings):
            nn.init.trunc_normal_(module.class_embedding, std=std)
            nn.init.trunc_normal_(module.position_embedding, std=std)


class VideoLaVITVisualTokenizer(VideoLaVITVisualTokenizerPreTrainedModel):
    """The keyframe tokenizer: `encode_features` (understanding), `tokenize` (generation), `forward` (training).

    The ViT always runs without gradients (`video_lavit.training.freeze_for_training` also freezes its parameters);
    the token predictor, merger, projections and codebook are trainable.
    """

    def __init__(self, config: VideoLaVITVisualTokenizerConfig):
        super().__init__(config)
        self.vision_model = EvaVisionTransformer(config)
        self.token_predictor = TokenPredictor(config)
        self.token_merger = TokenMerger(config)
        self.code_head = TanhProjection(config.vision_hidden_size, config.vision_hidden_size, config.code_dim)
        self.quantizer = VectorQuantizer(
            config.codebook_size, config.code_dim, commitment_weight=config.commitment_weight
        )
        self.language_projection = nn.Linear(config.vision_hidden_size, config.language_hidden_size)
        self.post_init()

    def _check_pixels(self, pixel_values: torch.Tensor) -> None:
        size = self.config.image_size
        expected = (self.config.num_channels, size, size)
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4 or pixel_values.shape[1:] != expected:
            shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            raise InvalidInputError(
                f"pixel_values must have shape [batch, {', '.join(map(str, expected))}], got {shape}"
            )
        check_finite(pixel_values, "pixel_values")

    def get_vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`pixel_values` `[batch, 3, 224, 224]` -> ViT patch features `[batch, 256, hidden]` (no CLS, no norm)."""
        self._check_pixels(pixel_values)
        with torch.no_grad():  # the ViT is frozen, as in the reference
            hidden_states = self.vision_model(pixel_values.to(self.vision_model.head.weight.dtype))
        return hidden_states[:, 1:]

    @torch.no_grad()
    def get_image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The EVA-CLIP image embedding `[batch, vision_projection_dim]`: CLS -> final LayerNorm -> CLIP head."""
        self._check_pixels(pixel_values)
        hidden_states = self.vision_model(pixel_values.to(self.vision_model.head.weight.dtype))
        return self.vision_model.head(self.vision_model.post_layernorm(hidden_states[:, 0]))

    def select_tokens(
        self,
        token_log_probs: torch.Tensor,
        selection: Selection = "argmax",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Keep decisions `[batch, N]` (1 = keep) from the predictor's `[batch, N, 2]` log-probabilities.

        `"argmax"` keeps a patch when keep is the likelier choice (ties keep). `"sample"` is the reference's hard
        Gumbel-softmax sample (temperature 1), with a straight-through gradient to the scores in training.
        """
        if selection == "argmax":
            return (token_log_probs.argmax(dim=-1) == 0).to(token_log_probs.dtype)
        if selection != "sample":
            raise InvalidInputError(f"selection must be 'argmax' or 'sample', got {selection!r}")
        # Drawn on the generator's device (a CPU generator also serves a GPU model), with the reference's draw.
        device = generator.device if generator is not None else token_log_probs.device
        noise = torch.empty(token_log_probs.shape, dtype=token_log_probs.dtype, device=device)
        gumbels = -noise.exponential_(generator=generator).log().to(token_log_probs.device)
        soft = (token_log_probs + gumbels).softmax(dim=-1)
        hard = F.one_hot(soft.argmax(dim=-1), 2).to(soft.dtype)
        return (hard - soft.detach() + soft)[..., 0]

    def _merge(
        self, pixel_values: torch.Tensor, selection: Selection, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ViT -> predictor -> keep decisions -> merger. Returns (merged `[b, N, hidden]`, keep `[b, N]`, scores)."""
        features = self.get_vision_features(pixel_values)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.training):
            token_log_probs = self.token_predictor(features)
            keep = self.select_tokens(token_log_probs, selection, generator)
        merged = self.token_merger(features, keep)
        return merged, keep, token_log_probs

    def encode_features(
        self,
        pixel_values: torch.Tensor,
        selection: Selection = "argmax",
        generator: torch.Generator | None = None,
    ) -> VisualTokenizerOutput:
        """Continuous kept-token features for the understanding LM.

        Args:
            pixel_values (`torch.Tensor` `[batch, 3, 224, 224]`): processor output.
            selection (`str`): `"argmax"` (deterministic) or `"sample"` (the reference's Gumbel sampling).
            generator (`torch.Generator`, *optional*): random source of `"sample"`.

        Returns:
            `VisualTokenizerOutput` with `features` `[batch, max_kept, language_hidden_size]`, `attention_mask`,
            `num_tokens`, `keep_mask`, `token_log_probs`.
        """
        merged, keep, token_log_probs = self._merge(pixel_values, selection, generator)
        keep_mask = keep > 0.5
        packed, attention_mask = pack_kept_tokens(merged, keep_mask)
        features = self.language_projection(packed).masked_fill(~attention_mask[..., None], 0)
        return VisualTokenizerOutput(
            features=features,
            attention_mask=attention_mask,
            num_tokens=keep_mask.sum(dim=1),
            keep_mask=keep_mask,
            token_log_probs=token_log_probs,
        )

    def tokenize(
        self,
        pixel_values: torch.Tensor,
        selection: Selection = "argmax",
        generator: torch.Generator | None = None,
    ) -> VisualTokenizerOutput:
        """Code indices for the generation LM.

        Args: as `encode_features`.

        Returns:
            `VisualTokenizerOutput` with `indices` `[batch, max_kept]` (-1 at padding), `quantized`
            `[batch, max_kept, code_dim]`, `attention_mask`, `num_tokens`, `keep_mask`, `token_log_probs`.
            `output.split("indices")` gives the list of per-image index tensors.
        """
        output = self._quantize(pixel_values, selection, generator)
        # A new output without the training fields: `ModelOutput` keeps a field set to None after construction.
        return VisualTokenizerOutput(
            indices=output.indices,
            quantized=output.quantized,
            attention_mask=output.attention_mask,
            num_tokens=output.num_tokens,
            keep_mask=output.keep_mask,
            token_log_probs=output.token_log_probs,
        )

    def _code_features(self, pixel_values: torch.Tensor, selection: Selection, generator: torch.Generator | None):
        merged, keep, token_log_probs = self._merge(pixel_values, selection, generator)
        keep_mask = keep > 0.5
        packed, attention_mask = pack_kept_tokens(merged, keep_mask)
        # The code head runs in the dtype of its own weights, as the reference casts to it.
        code_features = self.code_head(packed.to(self.code_head.fc2.weight.dtype))
        return code_features, attention_mask, keep_mask, token_log_probs

    @torch.no_grad()
    def fit_codebook(
        self,
        pixel_values: torch.Tensor,
        selection: Selection = "argmax",
        iterations: int = 20,
        generator: torch.Generator | None = None,
    ) -> torch.LongTensor:
        """Fit the codebook to these images by spherical k-means of their kept tokens' code features.

        A codebook initialisation (our addition) for training a keyframe tokenizer on a new domain, or for a tiny
        tokenizer whose other parts stay random: codes then follow the images' content instead of a random draw.

        Args:
            pixel_values (`torch.Tensor` `[images, 3, H, W]`): processor output; at least `codebook_size` kept
                tokens in all.
            selection (`str`): token selection, as in `tokenize`.
            iterations (`int`): k-means rounds.
            generator (`torch.Generator`, *optional*): picks the starting features.

        Returns:
            `torch.LongTensor` `[tokens]`: the new code of each kept token, images in order.
        """
        self._check_pixels(pixel_values)
        code_features, attention_mask, _, _ = self._code_features(pixel_values, selection, generator)
        return self.quantizer.fit_kmeans(code_features[attention_mask], iterations=iterations, generator=generator)

    def _quantize(
        self, pixel_values: torch.Tensor, selection: Selection, generator: torch.Generator | None
    ) -> VisualTokenizerOutput:
        code_features, attention_mask, keep_mask, token_log_probs = self._code_features(
            pixel_values, selection, generator
        )
        quantized = self.quantizer.encode(code_features[attention_mask])
        indices = torch.full(attention_mask.shape, -1, dtype=torch.long, device=attention_mask.device)
        indices[attention_mask] = quantized.indices
        codes = code_features.new_zeros(code_features.shape)
        codes[attention_mask] = quantized.quantized.to(codes.dtype)
        return VisualTokenizerOutput(
            indices=indices,
            quantized=codes,
            attention_mask=attention_mask,
            num_tokens=keep_mask.sum(dim=1),
            keep_mask=keep_mask,
            token_log_probs=token_log_probs,
            quantizer_loss=quantized.loss,
            perplexity=quantized.perplexity,
        )

    def forward(
        self,
        pixel_values: torch.Tensor,
        selection: Selection = "sample",
        generator: torch.Generator | None = None,
        target_keep_ratio: float | None = None,
        keep_ratio_weight: float = 2.0,
        return_dict: bool = True,
        **kwargs,
    ) -> VisualTokenizerOutput:
        """Training step of the code path: tokenize with straight-through codes and return the losses.

        `loss` is the quantizer's codebook + commitment loss, plus `keep_ratio_weight * (mean keep - target)^2`
        when `target_keep_ratio` is given (this keeps the predictor from keeping everything). Add a reconstruction
        loss by feeding `output.quantized` and `output.attention_mask` to `VideoLaVITVisualTokenDecoder`.

        Args:
            pixel_values (`torch.Tensor` `[batch, 3, 224, 224]`): processor output.
            selection (`str`): `"sample"` (default in training, as the reference) or `"argmax"`.
        """
        output = self._quantize(pixel_values, selection, generator)
        loss = output.quantizer_loss
        if target_keep_ratio is not None:
            keep_probability = output.token_log_probs[..., 0].exp().mean()
            output.keep_ratio_loss = (keep_probability - target_keep_ratio).pow(2)
            loss = loss + keep_ratio_weight * output.keep_ratio_loss
        output.loss = loss
        return output if return_dict else output.to_tuple()


__all__ = [
    "VideoLaVITVisualTokenizer",
    "VideoLaVITVisualTokenizerPreTrainedModel",
    "VisualTokenizerOutput",
    "pack_kept_tokens",
]
