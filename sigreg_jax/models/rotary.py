"""Two-dimensional (axial) rotary position embedding for vision transformers.

Axial RoPE (Heo et al., 2024, arXiv 2403.13298) rotates half of each head's
channels by the token's column and the other half by its row.
"""

from typing import Literal

import jax
import jax.numpy as jnp

RopePairing = Literal["within_axis", "cross_axis"]


def grid_positions(grid_height: int, grid_width: int) -> jax.Array:
  """Return the (x, y) = (column, row) position of each patch token.

  Tokens are in row-major order, the order of a `[height, width]` patch grid
  flattened by `reshape`.

  Args:
    grid_height: number of patch rows.
    grid_width: number of patch columns.

  Returns:
    int32 array `[grid_height * grid_width, 2]` with x in column 0 and y in
    column 1.
  """
  rows, columns = jnp.meshgrid(
      jnp.arange(grid_height), jnp.arange(grid_width), indexing="ij"
  )
  return jnp.stack([columns.reshape(-1), rows.reshape(-1)], axis=-1)


def axial_frequencies(head_dim: int, base: float = 10000.0) -> jax.Array:
  """Compute the rotation frequencies that each axis uses.

  Each axis owns `head_dim / 2` channels, so `head_dim / 4` rotation pairs.
  Pair `i` turns at frequency `base ** (-2 i / (head_dim / 2))`, the 1-D RoPE
  schedule applied to one axis.

  Args:
    head_dim: channels per attention head, a multiple of 4.
    base: RoPE base. Larger values give lower frequencies.

  Returns:
    float32 array `[head_dim // 4]`, decreasing from 1.
  """
  if head_dim % 4 != 0:
    raise ValueError(
        f"2-D rotary embedding needs head_dim divisible by 4 (two axes of "
        f"rotation pairs), got head_dim={head_dim}. Change width or num_heads."
    )
  axis_dim = head_dim // 2
  return base ** (-jnp.arange(0, axis_dim, 2, dtype=jnp.float32) / axis_dim)


def axial_rotary_angles(
    positions: jax.Array, head_dim: int, base: float = 10000.0
) -> jax.Array:
  """Compute the rotation angle of every pair of channels at each position.

  Args:
    positions: `[num_tokens, 2]` (x, y) positions, for example from
      `grid_positions`.
    head_dim: channels per attention head, a multiple of 4.
    base: RoPE base.

  Returns:
    float32 array `[num_tokens, head_dim // 2]`: the first `head_dim // 4`
    angles are `x * frequencies`, the last `head_dim // 4` are
    `y * frequencies`.
  """
  frequencies = axial_frequencies(head_dim, base)
  positions = positions.astype(jnp.float32)
  x_angles = positions[:, 0:1] * frequencies
  y_angles = positions[:, 1:2] * frequencies
  return jnp.concatenate([x_angles, y_angles], axis=-1)


def apply_axial_rotary(
    inputs: jax.Array,
    angles: jax.Array,
    *,
    pairing: RopePairing = "within_axis",
) -> jax.Array:
  r"""Rotate query or key channels by their token's 2-D position.

  With `pairing="within_axis"` (axial RoPE), the head's channels split into
  an x half and a y half of `h = head_dim / 2` channels each. Inside a half,
  channel `j` and channel `j + h / 2` form a pair that turns by the angle
  `theta_j` of its axis:

  .. math::
    (a, b) \mapsto (a \cos\theta - b \sin\theta,\; b \cos\theta + a \sin\theta)

  Every map is a rotation, so the score of a query at p and a key at p' is
  a function of p' - p only.

  `pairing="cross_axis"` reproduces the public PyTorch code of the
  Weak-SIGReg paper, which applies `rotate_half` over the whole head. There
  channel `j` of the x half pairs with channel `j` of the y half. The first
  member of a pair turns by the x angle and the second by the y angle, so
  the map is a rotation only when x == y, and scores also depend on absolute
  position.

  Args:
    inputs: `[..., head_dim]` queries or keys of any float dtype.
    angles: `[..., head_dim // 2]` from `axial_rotary_angles`, broadcastable
      against `inputs` apart from the last axis.
    pairing: "within_axis" (a true rotation) or "cross_axis" (the Weak-SIGReg
      authors' code).

  Returns:
    Array shaped and typed like `inputs`. The rotation runs in float32.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> angles = axial_rotary_angles(grid_positions(2, 2), head_dim=8)
    >>> queries = jnp.ones((4, 8))
    >>> apply_axial_rotary(queries, angles).shape
    (4, 8)

  References:
    Su et al., 2021, "RoFormer: Enhanced Transformer with Rotary Position
    Embedding", arXiv 2104.09864.
    Heo et al., 2024, "Rotary Position Embedding for Vision Transformer",
    arXiv 2403.13298.
    Akbar, 2026, "Weak-SIGReg", arXiv 2603.05924.
  """
  head_dim = inputs.shape[-1]
  if angles.shape[-1] * 2 != head_dim or head_dim % 4 != 0:
    raise ValueError(
        f"angles must have last axis head_dim // 2 with head_dim divisible by "
        f"4, got inputs {inputs.shape} and angles {angles.shape}. Build angles "
        f"with axial_rotary_angles(positions, head_dim={head_dim})."
    )
  quarter = head_dim // 4
  values = inputs.astype(jnp.float32)
  cosine = jnp.cos(angles)
  sine = jnp.sin(angles)

  if pairing == "within_axis":
    # [..., axis, member of the pair, frequency]
    values = values.reshape(*values.shape[:-1], 2, 2, quarter)
    cosine = cosine.reshape(*cosine.shape[:-1], 2, quarter)
    sine = sine.reshape(*sine.shape[:-1], 2, quarter)
    first, second = values[..., 0, :], values[..., 1, :]
    rotated = jnp.stack(
        [first * cosine - second * sine, second * cosine + first * sine],
        axis=-2,
    )
    return rotated.reshape(inputs.shape).astype(inputs.dtype)

  if pairing == "cross_axis":
    # Per-channel angle [x, x, y, y] by quarters, as the authors' code builds
    # it, then rotate_half over the full head: channel j pairs with j + h.
    x_angles, y_angles = angles[..., :quarter], angles[..., quarter:]
    channel_angles = jnp.concatenate(
        [x_angles, x_angles, y_angles, y_angles], axis=-1
    )
    half = head_dim // 2
    first, second = values[..., :half], values[..., half:]
    rotated_half = jnp.concatenate([-second, first], axis=-1)
    rotated = (
        values * jnp.cos(channel_angles)
        + rotated_half * jnp.sin(channel_angles)
    )
    return rotated.astype(inputs.dtype)

  raise ValueError(
      f"pairing must be 'within_axis' or 'cross_axis', got {pairing!r}."
  )
