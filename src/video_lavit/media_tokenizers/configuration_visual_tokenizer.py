"""Configurations of the Video-LaVIT keyframe tokenizer and its token decoder.

The defaults are the released models': the EVA-CLIP ViT-g/14 feature extractor, the 12-block token merger and the
16384 x 32 codebook of `visual_tokenizer/tokenizer_encoder.bin`, and the 12-block highres token decoder of
`visual_tokenizer/highres_tokenizer_decoder.bin` that conditions an SDXL-architecture UNet.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..checks import (
    CheckedConfigMixin,
    check_at_most,
    check_heads,
    check_non_negative_numbers,
    check_positive_ints,
    check_positive_numbers,
)
from ..errors import InvalidInputError


@strict
class VideoLaVITVisualTokenizerConfig(CheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`VideoLaVITVisualTokenizer`]: a frozen EVA-CLIP ViT, a token predictor that keeps a dynamic
    number (up to 256) of the 16 x 16 patch tokens, a token merger that folds the dropped tokens into the kept ones,
    and either a projection to the language model's width (understanding) or the VQ codebook (generation).

    image_size (`int`, *optional*, defaults to 224):
        Side of the square input image.
    patch_size (`int`, *optional*, defaults to 14):
        Side of a ViT patch; `(image_size // patch_size) ** 2` tokens per image.
    num_channels (`int`, *optional*, defaults to 3):
        Image channels.
    vision_hidden_size (`int`, *optional*, defaults to 1408):
        Width of the ViT; the token predictor, the merger and the code head work at this width too.
    vision_num_hidden_layers (`int`, *optional*, defaults to 40):
        ViT blocks.
    vision_num_attention_heads (`int`, *optional*, defaults to 16):
        ViT attention heads (head width 88).
    vision_intermediate_size (`int`, *optional*, defaults to 6144):
        Hidden width of the ViT MLPs.
    vision_layer_norm_eps (`float`, *optional*, defaults to 1e-6):
        Epsilon of the ViT LayerNorms.
    vision_projection_dim (`int`, *optional*, defaults to 1024):
        Output width of the ViT's CLIP projection head (`get_image_embeddings`; the tokenizer does not use it).
    merger_num_hidden_layers (`int`, *optional*, defaults to 12):
        Blocks of the token merger.
    merger_num_attention_heads (`int`, *optional*, defaults to 16):
        Attention heads of the token merger.
    merger_intermediate_size (`int`, *optional*, defaults to 6144):
        Hidden width of the merger MLPs.
    merger_layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of the LayerNorms of the token predictor and the merger.
    codebook_size (`int`, *optional*, defaults to 16384):
        Number of keyframe codes.
    code_dim (`int`, *optional*, defaults to 32):
        Width of a code.
    language_hidden_size (`int`, *optional*, defaults to 4096):
        Width of the language model that `encode_features` projects the merged tokens to.
    commitment_weight (`float`, *optional*, defaults to 0.25):
        Weight of the commitment loss when training the code path.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the truncated normal initialisation of the weights.
    """

    model_type = "video_lavit_visual_tokenizer"

    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    vision_hidden_size: int = 1408
    vision_num_hidden_layers: int = 40
    vision_num_attention_heads: int = 16
    vision_intermediate_size: int = 6144
    vision_layer_norm_eps: float = 1e-6
    vision_projection_dim: int = 1024
    merger_num_hidden_layers: int = 12
    merger_num_attention_heads: int = 16
    merger_intermediate_size: int = 6144
    merger_layer_norm_eps: float = 1e-5
    codebook_size: int = 16384
    code_dim: int = 32
    language_hidden_size: int = 4096
    commitment_weight: float = 0.25
    initializer_range: float = 0.02

    def check_values(self) -> None:
        """Raise `InvalidInputError` for settings the model cannot be built with (run when the config is made)."""
        owner = type(self).__name__
        check_positive_ints(
            owner,
            self,
            (
                "image_size",
                "patch_size",
                "num_channels",
                "vision_hidden_size",
                "vision_num_hidden_layers",
                "vision_num_attention_heads",
                "vision_intermediate_size",
                "vision_projection_dim",
                "merger_num_hidden_layers",
                "merger_num_attention_heads",
                "merger_intermediate_size",
                "codebook_size",
                "code_dim",
                "language_hidden_size",
            ),
        )
        check_positive_numbers(owner, self, ("vision_layer_norm_eps", "merger_layer_norm_eps"))
        check_non_negative_numbers(owner, self, ("commitment_weight", "initializer_range"))
        check_at_most(owner, self, {"vision_num_hidden_layers": 256, "merger_num_hidden_layers": 256})
        check_heads(
            owner,
            "vision_hidden_size",
            self.vision_hidden_size,
            "vision_num_attention_heads",
            self.vision_num_attention_heads,
        )
        check_heads(
            owner,
            "vision_hidden_size",
            self.vision_hidden_size,
            "merger_num_attention_heads",
            self.merger_num_attention_heads,
        )
        if self.image_size % self.patch_size:
            raise InvalidInputError(
                f"{owner}.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})."
            )
        if self.vision_hidden_size % 2:
            raise InvalidInputError(
                f"{owner}.vision_hidden_size must be even: the token predictor splits it in local and global halves."
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@strict
class VideoLaVITVisualTokenDecoderConfig(CheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`VideoLaVITVisualTokenDecoder`]: keyframe code indices -> the text-encoder-like conditioning
    of an SDXL-architecture UNet (`prompt_embeds` and `pooled_prompt_embeds`).

    codebook_size (`int`, *optional*, defaults to 16384):
        Number of keyframe codes (the decoder carries a copy of the tokenizer's codebook).
    code_dim (`int`, *optional*, defaults to 32):
        Width of a code.
    hidden_size (`int`, *optional*, defaults to 1408):
        Width of the decoder transformer.
    num_hidden_layers (`int`, *optional*, defaults to 12):
        Decoder blocks (self-attention among the queries, cross-attention to the codes, MLP).
    num_attention_heads (`int`, *optional*, defaults to 16):
        Attention heads of the blocks and of the attention pooling.
    intermediate_size (`int`, *optional*, defaults to 6144):
        Hidden width of the MLPs.
    layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of the LayerNorms.
    num_queries (`int`, *optional*, defaults to 256):
        Learned queries, also the most codes an image can have (one position embedding each).
    output_hidden_size (`int`, *optional*, defaults to 1408):
        Width of the reconstructed features the UNet conditioning is projected from.
    prompt_embed_dims (`list[int]`, *optional*, defaults to `[768, 1280]`):
        Widths of the projections concatenated into `prompt_embeds` (SDXL's two text encoders).
    pooled_embed_dim (`int`, *optional*, defaults to 1280):
        Width of `pooled_prompt_embeds`.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the truncated normal initialisation of the weights.
    """

    model_type = "video_lavit_visual_token_decoder"

    codebook_size: int = 16384
    code_dim: int = 32
    hidden_size: int = 1408
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    intermediate_size: int = 6144
    layer_norm_eps: float = 1e-5
    num_queries: int = 256
    output_hidden_size: int = 1408
    prompt_embed_dims: list[int] | tuple[int, ...] = (768, 1280)
    pooled_embed_dim: int = 1280
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if isinstance(self.prompt_embed_dims, (list, tuple)) and all(
            isinstance(dim, int) and not isinstance(dim, bool) for dim in self.prompt_embed_dims
        ):
            self.prompt_embed_dims = [int(dim) for dim in self.prompt_embed_dims]
        super().__post_init__(**kwargs)

    def check_values(self) -> None:
        """Raise `InvalidInputError` for settings the model cannot be built with (run when the config is made)."""
        owner = type(self).__name__
        check_positive_ints(
            owner,
            self,
            (
                "codebook_size",
                "code_dim",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "num_queries",
                "output_hidden_size",
                "pooled_embed_dim",
            ),
        )
        check_positive_numbers(owner, self, ("layer_norm_eps",))
        check_non_negative_numbers(owner, self, ("initializer_range",))
        check_at_most(owner, self, {"num_hidden_layers": 256})
        dims = self.prompt_embed_dims
        if not dims or not all(isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 for dim in dims):
            raise InvalidInputError(f"{owner}.prompt_embed_dims must be positive integers, got {dims!r}.")
        check_heads(owner, "hidden_size", self.hidden_size, "num_attention_heads", self.num_attention_heads)
        check_heads(
            owner, "output_hidden_size", self.output_hidden_size, "num_attention_heads", self.num_attention_heads
        )

    @property
    def prompt_embed_dim(self) -> int:
        return sum(self.prompt_embed_dims)


__all__ = ["VideoLaVITVisualTokenDecoderConfig", "VideoLaVITVisualTokenizerConfig"]
