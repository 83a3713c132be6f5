"""Vision transformer that returns its per-block representations.

A pre-LayerNorm ViT (Dosovitskiy et al., 2020, arXiv 2010.11929) for small
images. Besides the logits it returns the residual stream after each block,
mean-pooled over tokens: the tensors that Weak-SIGReg (Akbar, 2026,
arXiv 2603.05924) regularises.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sigreg_jax.models import initializers
from sigreg_jax.models import rotary

PositionEmbedding = Literal["rope2d", "learned"]
Pool = Literal["mean", "class_token"]

# PyTorch's LayerNorm default, because the Weak-SIGReg authors' models use
# torch.nn.LayerNorm.
_LAYER_NORM_EPSILON = 1e-5


def _gelu(inputs: jax.Array) -> jax.Array:
  # Exact (erf) GELU, the default of torch.nn.GELU.
  return jax.nn.gelu(inputs, approximate=False)


class SelfAttention(nnx.Module):
  """Multi-head self-attention with optional 2-D rotary queries and keys."""

  def __init__(
      self,
      width: int,
      num_heads: int,
      *,
      qkv_bias: bool,
      linear_init: str,
      rope_pairing: rotary.RopePairing,
      dtype: Any,
      rngs: nnx.Rngs,
  ):
    self.num_heads = num_heads
    self.head_dim = width // num_heads
    self.rope_pairing = rope_pairing
    kernel_init, bias_init = initializers.kernel_and_bias_init(
        linear_init, width, argument="linear_init"
    )
    self.qkv = nnx.Linear(
        width, 3 * width, use_bias=qkv_bias, kernel_init=kernel_init,
        bias_init=bias_init, dtype=dtype, rngs=rngs,
    )
    self.output = nnx.Linear(
        width, width, kernel_init=kernel_init, bias_init=bias_init,
        dtype=dtype, rngs=rngs,
    )

  def __call__(
      self, tokens: jax.Array, rotary_angles: jax.Array | None
  ) -> jax.Array:
    """Attend over `tokens [batch, num_tokens, width]`.

    `rotary_angles [num_tokens, head_dim // 2]` rotates queries and keys, and
    None leaves them as they are.
    """
    batch, num_tokens, width = tokens.shape
    qkv = self.qkv(tokens).reshape(
        batch, num_tokens, 3, self.num_heads, self.head_dim
    )
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

    if rotary_angles is not None:
      # One set of angles per token, shared by every head.
      angles = rotary_angles[:, None, :]
      query = rotary.apply_axial_rotary(
          query, angles, pairing=self.rope_pairing
      )
      key = rotary.apply_axial_rotary(key, angles, pairing=self.rope_pairing)

    # Scale 1/sqrt(head_dim). Logits and softmax run in float32 for bfloat16.
    attended = jax.nn.dot_product_attention(query, key, value)
    return self.output(attended.reshape(batch, num_tokens, width))


class FeedForward(nnx.Module):
  """The transformer MLP: Linear, GELU, Linear."""

  def __init__(
      self, width: int, mlp_dim: int, *, linear_init: str, dtype: Any,
      rngs: nnx.Rngs,
  ):
    kernel_init, bias_init = initializers.kernel_and_bias_init(
        linear_init, width, argument="linear_init"
    )
    self.hidden = nnx.Linear(
        width, mlp_dim, kernel_init=kernel_init, bias_init=bias_init,
        dtype=dtype, rngs=rngs,
    )
    kernel_init, bias_init = initializers.kernel_and_bias_init(
        linear_init, mlp_dim, argument="linear_init"
    )
    self.output = nnx.Linear(
        mlp_dim, width, kernel_init=kernel_init, bias_init=bias_init,
        dtype=dtype, rngs=rngs,
    )

  def __call__(self, tokens: jax.Array) -> jax.Array:
    return self.output(_gelu(self.hidden(tokens)))


class EncoderBlock(nnx.Module):
  """Pre-LayerNorm transformer block with stochastic depth on both branches."""

  def __init__(
      self,
      width: int,
      num_heads: int,
      mlp_dim: int,
      *,
      qkv_bias: bool,
      stochastic_depth_rate: float,
      linear_init: str,
      rope_pairing: rotary.RopePairing,
      dtype: Any,
      rngs: nnx.Rngs,
  ):
    self.attention_norm = nnx.LayerNorm(
        width, epsilon=_LAYER_NORM_EPSILON, dtype=dtype, rngs=rngs
    )
    self.attention = SelfAttention(
        width, num_heads, qkv_bias=qkv_bias, linear_init=linear_init,
        rope_pairing=rope_pairing, dtype=dtype, rngs=rngs,
    )
    self.mlp_norm = nnx.LayerNorm(
        width, epsilon=_LAYER_NORM_EPSILON, dtype=dtype, rngs=rngs
    )
    self.mlp = FeedForward(
        width, mlp_dim, linear_init=linear_init, dtype=dtype, rngs=rngs
    )

    # Stochastic depth drops a branch for whole examples: one Bernoulli draw
    # per example (mask broadcast over tokens and channels), survivors scaled
    # by 1 / (1 - rate). A block with rate 0 holds no random state.
    drop_rngs = rngs if stochastic_depth_rate > 0.0 else None
    self.attention_drop_path = nnx.Dropout(
        stochastic_depth_rate, broadcast_dims=(1, 2), rngs=drop_rngs
    )
    self.mlp_drop_path = nnx.Dropout(
        stochastic_depth_rate, broadcast_dims=(1, 2), rngs=drop_rngs
    )

  def __call__(
      self, tokens: jax.Array, rotary_angles: jax.Array | None
  ) -> jax.Array:
    attended = self.attention(self.attention_norm(tokens), rotary_angles)
    tokens = tokens + self.attention_drop_path(attended)

    transformed = self.mlp(self.mlp_norm(tokens))
    return tokens + self.mlp_drop_path(transformed)


def _image_size_pair(image_size: int | tuple[int, int]) -> tuple[int, int]:
  if isinstance(image_size, (int, np.integer)):
    return int(image_size), int(image_size)
  height, width = image_size
  return int(height), int(width)


class ViT(nnx.Module):
  """Vision transformer returning logits and the per-block residual streams.

  Patches are embedded by a strided convolution, then `depth` pre-LayerNorm
  blocks (self-attention and a GELU MLP, each on a residual branch) run, then
  a final LayerNorm, pooling and a linear head. After block `l` the residual
  stream `tokens [batch, num_tokens, width]` is averaged over all tokens, the
  class token included, into feature `l`, `[batch, width]`, without any
  normalisation. The features are returned alongside the logits and play no
  part in computing them.

  Position information comes from one of two sources. With `"rope2d"`,
  queries and keys get a 2-D rotary embedding: the head's channels split
  into an x half and a y half, with base `rope_base`, and a class token is
  not rotated. With `"learned"`, a learned absolute embedding is added to the
  tokens.

  Stochastic depth rises linearly over the blocks, from 0 in the first block
  to `stochastic_depth_rate` in the last, as `linspace(0, rate, depth)`. It is
  active after `model.train()` and off after `model.eval()`, and draws its
  masks from the `nnx.Rngs` stream "dropout" (or "default" when the `Rngs`
  has no "dropout" stream).

  Initialisation: the class token and learned position embedding are
  truncated normal with std 0.02. LayerNorms start at scale 1, offset 0.
  `linear_init`, `patch_embedding_init` and `head_init` choose the scheme of
  the block linears, the patch-embedding convolution and the head:
  "truncated_normal" (std 0.02, zero bias), "pytorch_default"
  (`U(+-1/sqrt(fan_in))` for weights and biases, PyTorch's `Linear` and
  `Conv2d` defaults) or, for the head, "xavier_uniform".

  Args:
    num_classes: number of output logits.
    image_size: input height and width, an int for square images or a
      `(height, width)` pair. Each must be a multiple of `patch_size`.
    in_channels: input channels.
    patch_size: side of the square patches.
    width: token channels (the residual stream width).
    depth: number of transformer blocks, which is also the number of features.
    num_heads: attention heads. It must divide `width`, and with "rope2d"
      `width // num_heads` must be a multiple of 4.
    mlp_dim: hidden width of each block's MLP.
    qkv_bias: whether the query, key and value projections have a bias.
    position_embedding: "rope2d" or "learned".
    class_token: whether to prepend a learned class token.
    pool: "mean" (mean of the final-normalised patch tokens, the class token
      excluded) or "class_token" (the final-normalised class token, which
      needs `class_token=True`).
    stochastic_depth_rate: drop rate of the last block, in [0, 1).
    rope_base: base of the rotary frequencies.
    rope_pairing: "within_axis" (true 2-D rotary embedding) or "cross_axis"
      (the public PyTorch code of the Weak-SIGReg paper, see
      `rotary.apply_axial_rotary`).
    linear_init: initialisation of the attention and MLP linears.
    patch_embedding_init: initialisation of the patch-embedding convolution.
    head_init: initialisation of the classifier head.
    dtype: compute dtype, for example `jnp.bfloat16`. Parameters stay float32,
      features come back in `dtype` and logits in float32.
    rngs: `nnx.Rngs` for parameters and, when `stochastic_depth_rate > 0`,
      the "dropout" stream.

  Example:
    >>> from flax import nnx
    >>> import jax.numpy as jnp
    >>> model = ViT(num_classes=10, width=32, depth=2, num_heads=2,
    ...             mlp_dim=64, rngs=nnx.Rngs(0))
    >>> logits, features = model(jnp.zeros((4, 32, 32, 3)))
    >>> logits.shape, len(features), features[0].shape
    ((4, 10), 2, (4, 32))

  References:
    Dosovitskiy et al., 2020, "An Image is Worth 16x16 Words: Transformers for
    Image Recognition at Scale", arXiv 2010.11929.
    Heo et al., 2024, "Rotary Position Embedding for Vision Transformer",
    arXiv 2403.13298.
    Huang et al., 2016, "Deep Networks with Stochastic Depth",
    arXiv 1603.09382.
    Akbar, 2026, "Weak-SIGReg", arXiv 2603.05924.
  """

  def __init__(
      self,
      *,
      num_classes: int,
      image_size: int | tuple[int, int] = 32,
      in_channels: int = 3,
      patch_size: int = 4,
      width: int = 256,
      depth: int = 6,
      num_heads: int = 8,
      mlp_dim: int = 512,
      qkv_bias: bool = False,
      position_embedding: PositionEmbedding = "rope2d",
      class_token: bool = False,
      pool: Pool = "mean",
      stochastic_depth_rate: float = 0.0,
      rope_base: float = 10000.0,
      rope_pairing: rotary.RopePairing = "within_axis",
      linear_init: str = "truncated_normal",
      patch_embedding_init: str = "truncated_normal",
      head_init: str = "truncated_normal",
      dtype: Any = jnp.float32,
      rngs: nnx.Rngs,
  ):
    image_height, image_width = _image_size_pair(image_size)
    _check_arguments(
        image_height=image_height, image_width=image_width,
        patch_size=patch_size, width=width, depth=depth, num_heads=num_heads,
        position_embedding=position_embedding, class_token=class_token,
        pool=pool, stochastic_depth_rate=stochastic_depth_rate,
        rope_pairing=rope_pairing,
    )

    self.image_shape = (image_height, image_width, in_channels)
    self.grid_shape = (image_height // patch_size, image_width // patch_size)
    self.num_prefix_tokens = 1 if class_token else 0
    num_patches = self.grid_shape[0] * self.grid_shape[1]
    num_tokens = num_patches + self.num_prefix_tokens
    self.position_embedding_kind = position_embedding
    self.pool = pool
    self.rope_base = rope_base
    self.dtype = dtype

    patch_fan_in = in_channels * patch_size * patch_size
    kernel_init, bias_init = initializers.kernel_and_bias_init(
        patch_embedding_init, patch_fan_in, argument="patch_embedding_init"
    )
    self.patch_embedding = nnx.Conv(
        in_channels, width, kernel_size=(patch_size, patch_size),
        strides=(patch_size, patch_size), padding="VALID",
        kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, rngs=rngs,
    )

    embedding_init = initializers.truncated_normal(0.02)
    if class_token:
      self.class_token = nnx.Param(embedding_init(rngs.params(), (1, 1, width)))
    else:
      self.class_token = None
    if position_embedding == "learned":
      self.position_embedding = nnx.Param(
          embedding_init(rngs.params(), (1, num_tokens, width))
      )
    else:
      self.position_embedding = None

    rates = np.linspace(0.0, stochastic_depth_rate, depth)
    self.blocks = nnx.List([
        EncoderBlock(
            width, num_heads, mlp_dim, qkv_bias=qkv_bias,
            stochastic_depth_rate=float(rate), linear_init=linear_init,
            rope_pairing=rope_pairing, dtype=dtype, rngs=rngs,
        )
        for rate in rates
    ])

    self.final_norm = nnx.LayerNorm(
        width, epsilon=_LAYER_NORM_EPSILON, dtype=dtype, rngs=rngs
    )
    kernel_init, bias_init = initializers.kernel_and_bias_init(
        head_init, width, argument="head_init"
    )
    self.head = nnx.Linear(
        width, num_classes, kernel_init=kernel_init, bias_init=bias_init,
        dtype=dtype, rngs=rngs,
    )

  def _rotary_angles(self, head_dim: int) -> jax.Array | None:
    """Return the angles `[num_tokens, head_dim // 2]`, 0 for a class token."""
    if self.position_embedding_kind != "rope2d":
      return None
    positions = rotary.grid_positions(*self.grid_shape)
    angles = rotary.axial_rotary_angles(positions, head_dim, self.rope_base)
    prefix = jnp.zeros((self.num_prefix_tokens, angles.shape[-1]), angles.dtype)
    return jnp.concatenate([prefix, angles], axis=0)

  def __call__(self, images: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """Classify `images [batch, height, width, channels]` (float, normalised).

    Returns:
      `(logits, features)`: float32 logits `[batch, num_classes]` and a list
      of `depth` arrays `[batch, width]` in the compute dtype, the residual
      stream after each block averaged over all tokens.
    """
    if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
      raise ValueError(
          f"images must have shape [batch, {', '.join(map(str, self.image_shape))}]"
          f" (NHWC), got {tuple(images.shape)}. Resize the images or build the"
          f" ViT with matching image_size and in_channels."
      )
    batch = images.shape[0]

    patches = self.patch_embedding(images.astype(self.dtype))
    tokens = patches.reshape(batch, -1, patches.shape[-1])

    if self.class_token is not None:
      class_tokens = jnp.broadcast_to(
          self.class_token[...].astype(tokens.dtype), (batch, 1, tokens.shape[-1])
      )
      tokens = jnp.concatenate([class_tokens, tokens], axis=1)
    if self.position_embedding is not None:
      tokens = tokens + self.position_embedding[...].astype(tokens.dtype)

    rotary_angles = self._rotary_angles(self.blocks[0].attention.head_dim)
    features = []
    for block in self.blocks:
      tokens = block(tokens, rotary_angles)
      features.append(tokens.mean(axis=1))

    tokens = self.final_norm(tokens)
    if self.pool == "class_token":
      pooled = tokens[:, 0]
    else:
      pooled = tokens[:, self.num_prefix_tokens:].mean(axis=1)
    logits = self.head(pooled).astype(jnp.float32)
    return logits, features


def _check_arguments(
    *, image_height, image_width, patch_size, width, depth, num_heads,
    position_embedding, class_token, pool, stochastic_depth_rate,
    rope_pairing,
) -> None:
  """Raise ValueError for ViT arguments that cannot build a working model."""
  if image_height % patch_size or image_width % patch_size:
    raise ValueError(
        f"image_size ({image_height}, {image_width}) must be a multiple of "
        f"patch_size={patch_size}. Crop or pad the images or change patch_size."
    )
  if depth < 1:
    raise ValueError(f"depth must be at least 1, got {depth}.")
  if width % num_heads:
    raise ValueError(
        f"num_heads={num_heads} must divide width={width}. Change one of them."
    )
  if position_embedding not in ("rope2d", "learned"):
    raise ValueError(
        f"position_embedding must be 'rope2d' or 'learned', got "
        f"{position_embedding!r}."
    )
  if position_embedding == "rope2d" and (width // num_heads) % 4:
    raise ValueError(
        f"position_embedding='rope2d' needs a head dimension divisible by 4 "
        f"(x and y halves of rotation pairs), got width // num_heads = "
        f"{width // num_heads}. Change width or num_heads."
    )
  if rope_pairing not in ("within_axis", "cross_axis"):
    raise ValueError(
        f"rope_pairing must be 'within_axis' or 'cross_axis', got "
        f"{rope_pairing!r}."
    )
  if pool not in ("mean", "class_token"):
    raise ValueError(f"pool must be 'mean' or 'class_token', got {pool!r}.")
  if pool == "class_token" and not class_token:
    raise ValueError(
        "pool='class_token' needs class_token=True. Set class_token=True or "
        "use pool='mean'."
    )
  if not 0.0 <= stochastic_depth_rate < 1.0:
    raise ValueError(
        f"stochastic_depth_rate must be in [0, 1), got {stochastic_depth_rate}."
    )


def vit_collapse_kwargs() -> dict[str, Any]:
  """Return the ViT arguments of the Weak-SIGReg paper's collapse setting.

  Patch 4 (64 tokens at 32x32), width 256, depth 6, 8 heads, MLP width 512,
  no qkv bias, 2-D rotary embedding (base 10000), no class token, mean
  pooling, no stochastic depth. Block and head linears are truncated normal
  with std 0.02 and zero biases. The patch-embedding convolution keeps
  PyTorch's default initialisation, as in the authors' code, which
  re-initialises only `nn.Linear` layers.

  Pass `num_classes` (and `image_size`, `in_channels` if not 32x32x3) with
  these: `ViT(num_classes=100, **vit_collapse_kwargs(), rngs=rngs)`.
  """
  return dict(
      patch_size=4,
      width=256,
      depth=6,
      num_heads=8,
      mlp_dim=512,
      qkv_bias=False,
      position_embedding="rope2d",
      class_token=False,
      pool="mean",
      stochastic_depth_rate=0.0,
      rope_base=10000.0,
      rope_pairing="within_axis",
      linear_init="truncated_normal",
      patch_embedding_init="pytorch_default",
      head_init="truncated_normal",
  )


def vit_tuned_kwargs() -> dict[str, Any]:
  """Return the ViT arguments of the Weak-SIGReg paper's tuned baseline.

  Patch 4, width 192, depth 9, 3 heads, MLP width 768, qkv bias, class token
  and learned absolute position embedding, stochastic depth rising linearly
  to 0.1, class-token pooling for the head. The features (the regularised
  tensors) average all 65 tokens, the class token included. The authors'
  code keeps PyTorch's default initialisation for the block linears and the
  patch embedding and uses Xavier-uniform head weights, reproduced here.
  """
  return dict(
      patch_size=4,
      width=192,
      depth=9,
      num_heads=3,
      mlp_dim=768,
      qkv_bias=True,
      position_embedding="learned",
      class_token=True,
      pool="class_token",
      stochastic_depth_rate=0.1,
      rope_base=10000.0,
      rope_pairing="within_axis",
      linear_init="pytorch_default",
      patch_embedding_init="pytorch_default",
      head_init="xavier_uniform",
  )
