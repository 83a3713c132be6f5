"""RandAugment in JAX for one image, with torchvision's operations and magnitudes.

Cubuk et al., 2020, "RandAugment: Practical automated data augmentation with a
reduced search space", arXiv 1909.13719. The op set, the 31 magnitude bins and
the rounding follow `torchvision.transforms.RandAugment` (torchvision 0.2x) on
uint8 images, with zero fill and nearest-neighbour resampling.

Every op is written as the same three steps: an affine warp, a blend with a
degenerate image, and a per-channel lookup table. An op sets one of the three
and leaves the other two as the identity, so an image costs one warp, one blend
and one lookup per op however the op was chosen, also under `jax.vmap`.
"""

from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

NUM_MAGNITUDE_BINS = 31

# Ops in torchvision's order; indices into this tuple are the op indices.
OPS = (
    "identity",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "brightness",
    "color",
    "contrast",
    "sharpness",
    "posterize",
    "solarize",
    "autocontrast",
    "equalize",
)
NUM_OPS = len(OPS)

# Branch index of each op in the warp, blend and lookup-table steps (0: identity).
_WARP_BRANCH = np.array([0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0], np.int32)
_BLEND_BRANCH = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0], np.int32)
_TABLE_BRANCH = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], np.int32)

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale.


def op_magnitudes(magnitude: int, image_shape: tuple[int, ...]) -> dict[str, float]:
  """Return torchvision's unsigned magnitude of each op at bin `magnitude`.

  Args:
    magnitude: bin index in [0, 30]. RandAugment's default is 9.
    image_shape: [H, W, C] of the images, for the translation range.

  Returns:
    A dict from op name to magnitude: shear as a tangent, translation in whole
    pixels, rotation in degrees, enhancement factors as the offset from 1,
    posterize as bits kept, solarize as the threshold in [0, 255].
  """
  if not 0 <= magnitude < NUM_MAGNITUDE_BINS:
    raise ValueError(
        f"magnitude must be an integer in [0, {NUM_MAGNITUDE_BINS - 1}], got {magnitude}."
    )
  height, width = image_shape[0], image_shape[1]
  fraction = magnitude / (NUM_MAGNITUDE_BINS - 1)
  return {
      "shear": 0.3 * fraction,
      "translate_x": float(int(150.0 / 331.0 * width * fraction)),
      "translate_y": float(int(150.0 / 331.0 * height * fraction)),
      "rotate": 30.0 * fraction,
      "enhance": 0.9 * fraction,
      "posterize_bits": float(8 - round(magnitude / ((NUM_MAGNITUDE_BINS - 1) / 4))),
      "solarize_threshold": 255.0 * (1.0 - fraction),
  }


def randaugment(
    key: jax.Array, image: jax.Array, *, num_ops: int = 2, magnitude: int = 9
) -> jax.Array:
  """Apply `num_ops` ops drawn uniformly from `OPS`, each with a random sign.

  Args:
    key: PRNG key for this image.
    image: float32 [H, W, C] with integer values in [0, 255], C 1 or 3.
    num_ops: number of ops applied in sequence. An op may repeat, as in
      torchvision.
    magnitude: magnitude bin in [0, 30].

  Returns:
    float32 [H, W, C] with integer values in [0, 255].

  Example:
    >>> image = jnp.full((32, 32, 3), 128.0)
    >>> randaugment(jax.random.key(0), image).shape
    (32, 32, 3)
  """
  if num_ops < 0:
    raise ValueError(f"num_ops must be non-negative, got {num_ops}.")
  op_key, sign_key = jax.random.split(key)
  op_indices = jax.random.randint(op_key, (num_ops,), 0, NUM_OPS)
  signs = jnp.where(jax.random.bernoulli(sign_key, 0.5, (num_ops,)), -1.0, 1.0)

  # A scan compiles apply_op once however many ops are applied.
  def apply_one(image, op_and_sign):
    op_index, sign = op_and_sign
    return apply_op(image, op_index, magnitude=magnitude, sign=sign), None

  image, _ = jax.lax.scan(apply_one, image, (op_indices, signs))
  return image


def apply_op(
    image: jax.Array, op_index: jax.Array, *, magnitude: int, sign: jax.Array
) -> jax.Array:
  """Apply the op `OPS[op_index]` to one image.

  Args:
    image: float32 [H, W, C] with integer values in [0, 255].
    op_index: int32 scalar in [0, len(OPS)).
    magnitude: magnitude bin in [0, 30], static.
    sign: +1.0 or -1.0, the sign of the magnitude of the signed ops (shear,
      translate, rotate and the four enhancements).

  Returns:
    float32 [H, W, C] with integer values in [0, 255].
  """
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"image must have shape [H, W, 1 or 3], got {image.shape}.")
  magnitudes = op_magnitudes(magnitude, image.shape)

  matrix = jax.lax.switch(
      jnp.asarray(_WARP_BRANCH)[op_index],
      [
          lambda: _translation_matrix(0.0, 0.0),
          lambda: _shear_matrix(sign * magnitudes["shear"], axis=1),
          lambda: _shear_matrix(sign * magnitudes["shear"], axis=0),
          lambda: _translation_matrix(0.0, sign * magnitudes["translate_x"]),
          lambda: _translation_matrix(sign * magnitudes["translate_y"], 0.0),
          lambda: _rotation_matrix(sign * magnitudes["rotate"], image.shape),
      ],
  )
  image = pix.affine_transform(image, matrix, order=0, mode="constant", cval=0.0)

  factor = 1.0 + sign * magnitudes["enhance"]
  factor, degenerate = jax.lax.switch(
      jnp.asarray(_BLEND_BRANCH)[op_index],
      [
          lambda: (1.0, jnp.zeros_like(image)),
          lambda: (factor, jnp.zeros_like(image)),
          lambda: (factor, jnp.broadcast_to(_grayscale(image), image.shape)),
          lambda: (factor, jnp.broadcast_to(jnp.mean(_grayscale(image)), image.shape)),
          lambda: (factor, _smoothed(image)),
      ],
  )
  # Written as degenerate + factor * (image - degenerate) rather than torchvision's
  # factor * image + (1 - factor) * degenerate so that factor 1, or a degenerate
  # equal to the image, returns the image exactly in float32.
  blended = degenerate + factor * (image - degenerate)
  image = jnp.floor(jnp.clip(blended, 0.0, 255.0))

  table = jax.lax.switch(
      jnp.asarray(_TABLE_BRANCH)[op_index],
      [
          lambda: _identity_table(image),
          lambda: _posterize_table(image, magnitudes["posterize_bits"]),
          lambda: _solarize_table(image, magnitudes["solarize_threshold"]),
          lambda: _autocontrast_table(image),
          lambda: _equalize_table(image),
      ],
  )
  return _apply_table(table, image)


# Warps. The matrices map output (row, column, channel, 1) to input coordinates,
# as `pix.affine_transform` expects.


def _homogeneous(linear, offset) -> jax.Array:
  matrix = jnp.eye(4, dtype=jnp.float32)
  matrix = matrix.at[:2, :2].set(jnp.asarray(linear, jnp.float32))
  return matrix.at[:2, 3].set(jnp.asarray(offset, jnp.float32))


def _translation_matrix(rows, columns) -> jax.Array:
  return _homogeneous(jnp.eye(2), jnp.stack([-jnp.asarray(rows), -jnp.asarray(columns)]))


def _shear_matrix(tangent, *, axis: int) -> jax.Array:
  # torchvision shears about the image's top-left corner, half a pixel before
  # pixel 0. axis=1 (ShearX) moves columns in proportion to the row.
  tangent = jnp.asarray(tangent, jnp.float32)
  if axis == 1:
    linear = jnp.array([[1.0, 0.0], [0.0, 1.0]]).at[1, 0].set(tangent)
    offset = jnp.stack([0.0, 0.5 * tangent])
  else:
    linear = jnp.array([[1.0, 0.0], [0.0, 1.0]]).at[0, 1].set(tangent)
    offset = jnp.stack([0.5 * tangent, 0.0])
  return _homogeneous(linear, offset)


def _rotation_matrix(degrees, image_shape) -> jax.Array:
  # Counter-clockwise on screen for positive angles, about the image centre.
  radians = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
  cos, sin = jnp.cos(radians), jnp.sin(radians)
  linear = jnp.stack([jnp.stack([cos, sin]), jnp.stack([-sin, cos])])
  centre = jnp.array([(image_shape[0] - 1) / 2, (image_shape[1] - 1) / 2], jnp.float32)
  return _homogeneous(linear, centre - linear @ centre)


# Degenerate images for the blends, rounded as torchvision rounds uint8 images.


def _grayscale(image: jax.Array) -> jax.Array:
  if image.shape[-1] == 1:
    return image
  weights = jnp.asarray(_GRAY_WEIGHTS, image.dtype)
  return jnp.floor(jnp.sum(image * weights, axis=-1, keepdims=True))


def _smoothed(image: jax.Array) -> jax.Array:
  # The 3x3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 on interior pixels.
  # Border pixels keep their values.
  height, width = image.shape[:2]
  total = 4.0 * image[1:-1, 1:-1]
  for row in range(3):
    for column in range(3):
      total = total + image[row : row + height - 2, column : column + width - 2]
  interior = jnp.round(total / 13.0)
  return image.at[1:-1, 1:-1].set(interior)


# Lookup tables: float32 [256, C], output value for each input value and channel.


def _identity_table(image: jax.Array) -> jax.Array:
  values = jnp.arange(256, dtype=jnp.float32)[:, None]
  return jnp.broadcast_to(values, (256, image.shape[-1]))


def _posterize_table(image: jax.Array, bits: float) -> jax.Array:
  step = 2.0 ** (8 - bits)
  return jnp.floor(_identity_table(image) / step) * step


def _solarize_table(image: jax.Array, threshold: float) -> jax.Array:
  values = _identity_table(image)
  return jnp.where(values >= threshold, 255.0 - values, values)


def _autocontrast_table(image: jax.Array) -> jax.Array:
  minimum = jnp.min(image, axis=(0, 1))
  maximum = jnp.max(image, axis=(0, 1))
  constant = maximum <= minimum
  scale = jnp.where(constant, 1.0, 255.0 / jnp.where(constant, 1.0, maximum - minimum))
  minimum = jnp.where(constant, 0.0, minimum)
  return jnp.floor(jnp.clip((_identity_table(image) - minimum) * scale, 0.0, 255.0))


def _equalize_table(image: jax.Array) -> jax.Array:
  # torchvision's histogram equalisation: step is the pixel count outside the
  # brightest occupied bin over 255; a zero step leaves the channel unchanged.
  pixels = image.reshape(-1, image.shape[-1]).astype(jnp.int32)

  def channel_table(values):
    histogram = jnp.zeros(256, jnp.int32).at[values].add(1)
    step = (values.shape[0] - histogram[jnp.max(values)]) // 255
    safe_step = jnp.maximum(step, 1)
    table = (jnp.cumsum(histogram) + safe_step // 2) // safe_step
    table = jnp.clip(jnp.concatenate([jnp.zeros(1, jnp.int32), table[:-1]]), 0, 255)
    return jnp.where(step == 0, jnp.arange(256), table).astype(jnp.float32)

  return jax.vmap(channel_table, in_axes=1, out_axes=1)(pixels)


def _apply_table(table: jax.Array, image: jax.Array) -> jax.Array:
  indices = jnp.clip(image, 0, 255).astype(jnp.int32)
  channels = jnp.arange(image.shape[-1])
  return table[indices, channels]


__all__ = ["NUM_MAGNITUDE_BINS", "OPS", "apply_op", "op_magnitudes", "randaugment"]
