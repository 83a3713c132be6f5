"""Weak-SIGReg and SIGReg representation regularisers as pure JAX functions.

Weak-SIGReg pulls the covariance of a random sketch of the features towards
the identity (Akbar, 2026, arXiv 2603.05924). SIGReg applies the Epps-Pulley
normality test to random 1-D projections (Balestriero and LeCun, 2025, arXiv
2511.08544).
"""

from collections.abc import Callable, Sequence
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

SKETCHES = ("gaussian", "orthogonal")

PAPER_GRID: dict[str, Any] = {"t_max": 5.0, "num_knots": 9}
"""The Weak-SIGReg paper's quadrature grid for `sigreg`.

The paper integrates over `linspace(-5, 5, 17)` with the plain trapezoid
rule. The integrand is even, so that rule equals the doubled trapezoid rule
on `[0, 5]` with 9 knots, which is what these keyword arguments select:
`sigreg(key, z, **PAPER_GRID)`.
"""


# Input checks. They run on static shapes and Python values, so they raise
# while tracing.


def _check_features(z: Array, name: str = "z") -> None:
  if not hasattr(z, "shape") or not hasattr(z, "dtype"):
    raise TypeError(
        f"{name} must be a JAX or NumPy array of shape [batch, channels], got"
        f" {type(z).__name__}; convert it first, for example"
        f" jnp.asarray({name}, jnp.float32)."
    )
  shape = tuple(z.shape)
  if len(shape) != 2:
    raise ValueError(
        f"{name} must have shape [batch, channels], got {shape}; pool or"
        " flatten token or spatial features first, for example"
        " z.mean(axis=1) for [batch, tokens, channels]."
    )
  if not jnp.issubdtype(z.dtype, jnp.floating):
    raise ValueError(
        f"{name} must have a floating-point dtype, got {z.dtype}; cast it"
        f" first, for example {name}.astype(jnp.float32)."
    )
  if shape[0] < 2:
    raise ValueError(
        f"{name} must have a batch size of at least 2 to estimate a"
        f" covariance or a characteristic function, got shape {shape}."
    )
  if shape[1] < 1:
    raise ValueError(
        f"{name} must have at least 1 channel, got shape {shape}; check the"
        " layer that produces the features."
    )
  if jax.sharding.get_abstract_mesh().empty and isinstance(z, jax.Array):
    # Outside a mesh context, JAX cannot contract over a batch axis sharded
    # on Explicit mesh axes (replicated or channel-sharded features work).
    sharding = getattr(jax.typeof(z), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    batch_axes = sharding.spec[0] if mesh is not None and sharding.spec else None
    if isinstance(batch_axes, str):
      batch_axes = (batch_axes,)
    explicit = [
        axis for axis in batch_axes or ()
        if mesh.axis_types[mesh.axis_names.index(axis)]
        == jax.sharding.AxisType.Explicit
    ]
    if explicit:
      raise ValueError(
          f"{name} has its batch sharded over the Explicit mesh axes"
          f" {tuple(explicit)}, but no mesh is set; JAX contracts over such an"
          " axis only inside `with jax.set_mesh(mesh):`, so call the"
          " regulariser there."
      )


def _check_key(key: Any) -> None:
  """Raises unless `key` is a typed PRNG key or a raw uint32 key array."""
  dtype = getattr(key, "dtype", None)
  shape = tuple(getattr(key, "shape", ()))
  if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
    if shape:
      raise ValueError(
          f"key must be a single PRNG key, got an array of {shape} keys; pass"
          " one, for example keys[0], or use jax.vmap over the keys."
      )
    return
  # Raw keys from jax.random.PRNGKey are uint32 arrays that jax.random reads
  # with the default implementation: [2] for threefry, [4] for rbg.
  raw_shape = (4,) if "rbg" in str(jax.config.jax_default_prng_impl) else (2,)
  if dtype == jnp.uint32 and shape == raw_shape:
    return
  if dtype == jnp.uint32 and shape in ((2,), (4,)):
    raise TypeError(
        f"key is a raw uint32 key of shape {shape}, but the default PRNG"
        f" implementation ({jax.config.jax_default_prng_impl}) reads raw keys"
        f" of shape {raw_shape}; pass a typed key such as"
        " jax.random.key(seed, impl='rbg')."
    )
  description = (
      f"{type(key).__name__}" if dtype is None else f"an array of dtype {dtype}"
      f" and shape {shape}"
  )
  raise TypeError(
      f"key must be a JAX PRNG key, got {description}; create one with"
      " jax.random.key(seed)."
  )


def _check_count(value: Any, name: str) -> int:
  if isinstance(value, jax.core.Tracer):
    raise TypeError(
        f"{name} must be a Python int known while tracing, got a traced"
        f" value; under jax.jit, mark it static, for example"
        f" jax.jit(fn, static_argnames=({name!r},)), or bind it with"
        f" functools.partial(fn, {name}=...)."
    )
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be a Python int, got {value!r}.")
  if value < 1:
    raise ValueError(f"{name} must be at least 1, got {value}.")
  return int(value)


def _check_grid(t_max: Any, num_knots: Any) -> tuple[float, int]:
  if isinstance(num_knots, bool) or not isinstance(
      num_knots, (int, np.integer)
  ):
    raise TypeError(f"num_knots must be a Python int, got {num_knots!r}.")
  if num_knots < 3 or num_knots % 2 == 0:
    raise ValueError(
        f"num_knots must be odd and at least 3, got {num_knots}; use, for"
        " example, 17 (the LeJEPA default) or 9 with t_max=5.0 (the"
        " Weak-SIGReg paper's grid)."
    )
  if isinstance(t_max, (str, bytes, bool)):
    raise TypeError(f"t_max must be a Python float, got {t_max!r}.")
  try:
    t_max = float(t_max)
  except (TypeError, jax.errors.ConcretizationTypeError) as error:
    raise TypeError(
        f"t_max must be a Python float known while tracing, got {t_max!r};"
        " under jax.jit, mark it static, for example jax.jit(fn,"
        " static_argnames=('t_max',)), or bind it with"
        " functools.partial(fn, t_max=...)."
    ) from error
  if not t_max > 0.0 or not math.isfinite(t_max):
    raise ValueError(
        f"t_max must be positive and finite, got {t_max}; use, for example,"
        " 3.0 (the LeJEPA default) or 5.0 (the Weak-SIGReg paper's grid)."
    )
  spacing = t_max / (num_knots - 1)
  if np.float32(np.exp(-np.square(spacing) / 2.0)) == 0.0:
    raise ValueError(
        f"t_max={t_max} with num_knots={num_knots} spaces the knots"
        f" {spacing:.3g} apart, so every knot after t = 0 gets the weight"
        " exp(-t^2 / 2) = 0 in float32 and the loss is 0 for any input; use"
        " t_max of at most about 5 (the weight at 5 is 4e-6) or more knots."
    )
  return t_max, int(num_knots)


# Sharding. Under a mesh with Explicit axes, JAX rejects a contraction over a
# sharded axis unless the output sharding is given, so the matmuls below name
# it. Under Auto axes or without a mesh they are plain matmuls.


def _has_explicit_axes() -> bool:
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return False
  return any(
      axis_type == jax.sharding.AxisType.Explicit
      for axis_type in mesh.axis_types
  )


def _project(z: Array, matrix: Array, precision: Any) -> Array:
  """Returns `z @ matrix`, keeping the batch sharding of `z` under Explicit."""
  if not _has_explicit_axes():
    return jnp.matmul(z, matrix, precision=precision)
  batch_spec = jax.typeof(z).sharding.spec[0]
  return jnp.matmul(
      z,
      matrix,
      precision=precision,
      out_sharding=jax.sharding.PartitionSpec(batch_spec, None),
  )


def _transpose_matmul(a: Array, b: Array, precision: Any) -> Array:
  """Returns `a.T @ b`, a contraction over the batch, replicated under Explicit."""
  if not _has_explicit_axes():
    return jnp.matmul(a.T, b, precision=precision)
  return jnp.matmul(
      a.T,
      b,
      precision=precision,
      out_sharding=jax.sharding.PartitionSpec(None, None),
  )


def _covariance(z: Array, precision: Any = None) -> Array:
  """Returns the unbiased covariance of the rows of a float32 `z`."""
  centered = z - jnp.mean(z, axis=0)
  return _transpose_matmul(centered, centered, precision) / (z.shape[0] - 1)


def _safe_sqrt(x: Array) -> Array:
  """Returns `sqrt(x)` for `x >= 0` with a zero (not infinite) gradient at 0.

  NaN and infinity pass through, so features with a NaN give a NaN loss
  that the training loop detects, not a silent 0.
  """
  zero = x == 0
  return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, x)))


# Weak-SIGReg.


def _deviation_from_identity(y: Array, precision: Any) -> tuple[Array, Array]:
  """Returns the centred `y` and `cov(y) - I`, the unbiased covariance."""
  centered = y - jnp.mean(y, axis=0)
  covariance = _transpose_matmul(centered, centered, precision) / (y.shape[0] - 1)
  return centered, covariance - jnp.eye(covariance.shape[0], dtype=y.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _distance_to_identity(y: Array, precision: Any) -> Array:
  """Returns `||cov(y) - I||_F` for float32 `y` of shape [batch, K].

  The derivative is written out so that reverse mode runs one
  [batch, K] x [K, K] product for the gradient `2 y D / ((N - 1) ||D||_F)`,
  with `D = cov(y) - I`. Autodiff would run two, one per operand of
  `y.T @ y`, and transpose a [K, K] matrix, which is slow on CPUs.
  """
  _, deviation = _deviation_from_identity(y, precision)
  return _safe_sqrt(jnp.sum(jnp.square(deviation)))


@_distance_to_identity.defjvp
def _distance_to_identity_jvp(precision, primals, tangents):
  # With centred y, D = cov - I (symmetric) and d cov = (y^T dy + dy^T y) / (N - 1):
  # d ||D||_F = <D, d cov> / ||D||_F = <D, y^T dy> * 2 / ((N - 1) ||D||_F).
  # Written as <D, y^T dy>, the transpose for reverse mode is the single
  # product y @ (D * scale), and the cotangent multiplies the [K, K] matrix
  # instead of a [batch, K] one. The centring of dy drops out because the
  # columns of y sum to zero.
  (y,), (y_tangent,) = primals, tangents
  centered, deviation = _deviation_from_identity(y, precision)
  squared_norm = jnp.sum(jnp.square(deviation))
  distance = _safe_sqrt(squared_norm)

  zero = squared_norm == 0
  scale = jnp.where(
      zero, 0.0, 2.0 / ((y.shape[0] - 1) * jnp.where(zero, 1.0, distance))
  )
  projected_tangent = _transpose_matmul(centered, y_tangent, precision)
  return distance, jnp.sum(projected_tangent * (deviation * scale))


def _standard_normal(key: Array, shape: tuple[int, int]) -> Array:
  """Draws float32 `Normal(0, 1)` values with half of the default hashing.

  JAX's default (partitionable) Threefry hashes one counter pair per output
  value and keeps one of the two words. The classic mode used here keeps both
  words of every hash. Sketches and directions are small and replicated, so
  partitionable draws gain nothing for them. On one core of a 2-core CPU
  (JAX 0.10.2), the classic mode took about a third less time for [1024, 64]
  and [1024, 256] draws. The distribution is the same, but the values differ
  from `jax.random.normal(key, shape)`. Keys of other implementations, such
  as `rbg`, draw as usual.
  """
  with jax.threefry_partitionable(False):
    return jax.random.normal(key, shape, jnp.float32)


def gaussian_sketch(key: Array, num_channels: int, num_sketches: int) -> Array:
  """Draws the Weak-SIGReg sketch: i.i.d. `Normal(0, 1 / num_channels)`.

  Args:
    key: a JAX PRNG key.
    num_channels: rows `C`.
    num_sketches: columns `K`.

  Returns:
    A float32 array of shape `[num_channels, num_sketches]` with
    `E[S^T S] = I_K`.

  Raises:
    TypeError, ValueError: for a key that is not a PRNG key or counts that
      are not positive Python ints.
  """
  _check_key(key)
  num_channels = _check_count(num_channels, "num_channels")
  num_sketches = _check_count(num_sketches, "num_sketches")
  gaussian = _standard_normal(key, (num_channels, num_sketches))
  return gaussian * (1.0 / math.sqrt(num_channels))


def orthogonal_sketch(key: Array, num_channels: int, num_sketches: int) -> Array:
  """Draws a sketch with orthonormal columns, uniformly (Haar) distributed.

  The columns are the Q factor of a Gaussian matrix, with signs fixed by the
  diagonal of R so that the distribution is uniform.

  Args:
    key: a JAX PRNG key.
    num_channels: rows `C`, at least `num_sketches`.
    num_sketches: columns `K`.

  Returns:
    A float32 array of shape `[num_channels, num_sketches]` with
    `S^T S = I_K`.

  Raises:
    TypeError, ValueError: for a key that is not a PRNG key, counts that are
      not positive Python ints, or `num_channels < num_sketches`.
  """
  _check_key(key)
  num_channels = _check_count(num_channels, "num_channels")
  num_sketches = _check_count(num_sketches, "num_sketches")
  if num_channels < num_sketches:
    raise ValueError(
        f"An orthogonal sketch needs num_channels >= num_sketches, got"
        f" num_channels={num_channels} and num_sketches={num_sketches};"
        " lower num_sketches or skip the sketch (weak_sigreg does when"
        " num_channels <= num_sketches)."
    )
  gaussian = _standard_normal(key, (num_channels, num_sketches))
  q, r = jnp.linalg.qr(gaussian, mode="reduced")
  signs = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0)
  return q * signs


@functools.partial(
    jax.jit, static_argnames=("num_sketches", "sketch", "precision")
)
def _weak_sigreg(
    key: Array, z: Array, num_sketches: int, sketch: str, precision: Any
) -> Array:
  z = z.astype(jnp.float32)
  num_channels = z.shape[1]

  if num_channels > num_sketches:
    draw = gaussian_sketch if sketch == "gaussian" else orthogonal_sketch
    sketch_matrix = draw(key, num_channels, num_sketches)
    sketched = _project(z, sketch_matrix, precision)
  else:
    sketched = z

  return _distance_to_identity(sketched, precision)


def weak_sigreg(
    key: Array,
    z: Array,
    *,
    num_sketches: int = 64,
    sketch: str = "gaussian",
    precision: Any = None,
) -> Array:
  r"""Computes the Weak-SIGReg loss: sketched covariance against the identity.

  With `K = num_sketches` and `C` channels, the features are sketched to `K`
  dimensions when `C > K`, centred over the batch, and their unbiased
  covariance is compared to the identity:

  .. math::
    y = z S, \quad \bar y = y - \tfrac{1}{N} \mathbf{1}\mathbf{1}^\top y,
    \quad \ell = \bigl\| \tfrac{1}{N-1} \bar y^\top \bar y - I_K \bigr\|_F

  The default `sketch="gaussian"` is the published method: `S` has i.i.d.
  `Normal(0, 1/C)` entries, so `E[S^T S] = I_K`. With `C <= K` there is no
  sketch (`y = z`, target `I_C`) and the value does not depend on `key`. The
  norm is the plain Frobenius norm, neither squared nor normalised by `K`.

  Isotropic `Normal(0, I_C)` features do not reach 0: a finite batch and the
  Gaussian sketch leave roughly `sqrt(K (K+1) / (N-1) + K (K+1) / C)`.
  `sketch="orthogonal"` draws `S` with orthonormal columns (`S^T S = I_K`),
  which removes the sketch term. Fully collapsed features (all rows equal)
  give `sqrt(min(C, K))`, and the gradient there is zero up to the float32
  rounding of the batch mean.

  The statistics are computed in float32 whatever the dtype of `z`. Under
  `jax.jit` with `z` sharded over the batch they are those of the global
  batch; under a mesh with Explicit axes the covariance is replicated.

  Args:
    key: a JAX PRNG key. The sketch depends on `key` alone, so the same key
      gives the same sketch on every device and host. Use a fresh key every
      step and layer (see `step_key` and `mean_over_layers`).
    z: features of shape `[batch, channels]`, floating point, batch >= 2.
    num_sketches: sketch dimension `K`, at least 1.
    sketch: `"gaussian"` (default, the published method) or `"orthogonal"`.
    precision: matmul precision passed to `jnp.matmul` (`None` uses JAX's
      default, which may be TF32 on recent NVIDIA GPUs).

  Returns:
    A float32 scalar.

  Raises:
    TypeError: when `key` is not a PRNG key, `z` is not an array, or
      `num_sketches` is not a Python int (under `jax.jit`, mark it static).
    ValueError: when `z` is not of rank 2, not floating point, or has fewer
      than 2 rows or no channels, when `num_sketches < 1`, or for an unknown
      `sketch`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from sigreg_jax import weak_sigreg
    >>> key = jax.random.key(0)
    >>> collapsed = jnp.ones((32, 256))
    >>> print(f"{weak_sigreg(key, collapsed, num_sketches=64):.4f}")
    8.0000
    >>> z = jax.random.normal(jax.random.key(1), (128, 256))
    >>> loss, grad = jax.value_and_grad(weak_sigreg, argnums=1)(key, z)
    >>> loss.dtype, grad.shape
    (dtype('float32'), (128, 256))

  References:
    Akbar, "Weak-SIGReg: Covariance Regularization for Stable Deep Learning",
    2026, arXiv:2603.05924.
  """
  _check_key(key)
  _check_features(z)
  num_sketches = _check_count(num_sketches, "num_sketches")
  if sketch not in SKETCHES:
    raise ValueError(
        f"sketch must be one of {SKETCHES}, got {sketch!r}; use 'gaussian'"
        " for the published method."
    )
  return _weak_sigreg(key, z, num_sketches, sketch, precision)


# SIGReg.


def _quadrature_grid(t_max: float, num_knots: int) -> tuple[np.ndarray, ...]:
  """Returns float64 knots and weights of the doubled trapezoid rule.

  The weights integrate an even function over the real line from its values
  on `linspace(0, t_max, num_knots)`, and include the window `exp(-t^2 / 2)`.
  """
  knots = np.linspace(0.0, t_max, num_knots)
  spacing = t_max / (num_knots - 1)
  trapezoid = np.full(num_knots, 2.0 * spacing)
  trapezoid[0] = trapezoid[-1] = spacing
  return knots, trapezoid * np.exp(-np.square(knots) / 2.0)


def _normalize_columns(directions: Array) -> Array:
  """Scales each column to unit L2 norm; a zero column stays zero."""
  squared_norms = jnp.sum(jnp.square(directions), axis=0)
  nonzero = squared_norms > 0
  inverse_norms = jnp.where(
      nonzero, jax.lax.rsqrt(jnp.where(nonzero, squared_norms, 1.0)), 0.0
  )
  return directions * inverse_norms


def unit_directions(key: Array, num_channels: int, num_slices: int) -> Array:
  """Draws SIGReg's directions, uniform on the unit sphere.

  Args:
    key: a JAX PRNG key.
    num_channels: dimension `C` of each direction.
    num_slices: number of directions `M`.

  Returns:
    A float32 array of shape `[num_channels, num_slices]` whose columns have
    unit L2 norm.
  """
  _check_key(key)
  num_channels = _check_count(num_channels, "num_channels")
  num_slices = _check_count(num_slices, "num_slices")
  directions = _standard_normal(key, (num_channels, num_slices))
  return _normalize_columns(directions)


# Elements of one [batch, block] array of projections (4 MiB in float32):
# small enough to bound memory, large enough to keep the loops short.
_BLOCK_ELEMENTS = 2**20


def _slice_blocks(batch_size: int, num_slices: int) -> tuple[int, int]:
  """Returns `(num_blocks, block_size)` covering the slices with little padding."""
  max_block_size = max(1, _BLOCK_ELEMENTS // batch_size)
  num_blocks = -(-num_slices // max_block_size)
  block_size = -(-num_slices // num_blocks)
  return num_blocks, block_size


def _split_columns(x: Array, num_blocks: int, block_size: int) -> Array:
  """Splits [rows, M] into [num_blocks, rows, block_size], zero-padded."""
  rows, columns = x.shape
  x = jnp.pad(x, ((0, 0), (0, num_blocks * block_size - columns)))
  return x.reshape(rows, num_blocks, block_size).transpose(1, 0, 2)


def _merge_columns(x: Array, num_columns: int) -> Array:
  """Inverts `_split_columns`: [num_blocks, rows, block_size] to [rows, M]."""
  num_blocks, rows, block_size = x.shape
  x = x.transpose(1, 0, 2).reshape(rows, num_blocks * block_size)
  return x[:, :num_columns]


def _rotate(cosine: Array, sine: Array, rotation: tuple[Array, Array]):
  """Returns `(cos(a + b), sin(a + b))` from `cos a`, `sin a` and `(cos b, sin b)`."""
  rotation_cosine, rotation_sine = rotation
  return (
      cosine * rotation_cosine - sine * rotation_sine,
      sine * rotation_cosine + cosine * rotation_sine,
  )


def _characteristic_function(
    projections: Array, spacing: float, num_knots: int
) -> tuple[Array, Array]:
  """Returns the real and imaginary parts of the empirical characteristic
  function at the knots `spacing * (1, ..., num_knots)`, each
  [num_knots, num_slices].

  The knots are evenly spaced, so the angle-addition formulas give knot k + 1
  from knot k by a rotation through `spacing * p`. Only that rotation calls
  `cos` and `sin`, which are the slow part on CPUs, and rounding grows by
  about one float32 epsilon per knot.
  """
  angles = spacing * projections
  rotation = (jnp.cos(angles), jnp.sin(angles))

  def one_knot(carry, _):
    cosine, sine = carry
    means = (jnp.mean(cosine, axis=0), jnp.mean(sine, axis=0))
    return _rotate(cosine, sine, rotation), means

  _, (cosine_means, sine_means) = jax.lax.scan(
      one_knot, rotation, None, length=num_knots
  )
  return cosine_means, sine_means


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _epps_pulley(
    z: Array,
    directions: Array,
    knots: tuple[float, ...],
    weights: tuple[float, ...],
    precision: Any,
) -> Array:
  """Returns the per-slice Epps-Pulley statistic of float32 `z @ directions`.

  Both passes loop over blocks of slices and, inside a block, over knots,
  and the backward pass recomputes the projections. Memory therefore stays
  at a few [batch, block] arrays: it never holds [batch, slices, knots], nor
  even [batch, slices].
  """
  return _epps_pulley_forward(z, directions, knots, weights, precision)[0]


def _epps_pulley_forward(z, directions, knots, weights, precision):
  batch_size = z.shape[0]
  num_slices = directions.shape[1]
  num_blocks, block_size = _slice_blocks(batch_size, num_slices)
  knots_array = jnp.asarray(knots, jnp.float32)

  def one_block(carry, block_directions):
    projections = _project(z, block_directions, precision)
    return carry, _characteristic_function(projections, knots[0], len(knots))

  _, (cosine_means, sine_means) = jax.lax.scan(
      one_block, None, _split_columns(directions, num_blocks, block_size)
  )
  cosine_means = _merge_columns(cosine_means, num_slices)
  sine_means = _merge_columns(sine_means, num_slices)

  weights_array = jnp.asarray(weights, jnp.float32)[:, None]
  gaussian = jnp.exp(-jnp.square(knots_array) / 2.0)[:, None]
  squared_error = jnp.square(cosine_means - gaussian) + jnp.square(sine_means)
  statistic = batch_size * jnp.sum(weights_array * squared_error, axis=0)
  return statistic, (z, directions, cosine_means, sine_means)


def _epps_pulley_backward(knots, weights, precision, residuals, statistic_grad):
  # d statistic_m / d p_nm = sum_k 2 w_k t_k [s_km cos(t_k p_nm)
  #                                          - (c_km - phi_k) sin(t_k p_nm)].
  # The batch size in front of the statistic cancels the 1/N of the means.
  z, directions, cosine_means, sine_means = residuals
  num_slices = directions.shape[1]
  num_blocks, block_size = _slice_blocks(z.shape[0], num_slices)
  knots_array = jnp.asarray(knots, jnp.float32)
  weights_array = jnp.asarray(weights, jnp.float32)
  gaussian = jnp.exp(-jnp.square(knots_array) / 2.0)[:, None]

  scale = (2.0 * weights_array * knots_array)[:, None] * statistic_grad
  sine_coefficients = scale * (cosine_means - gaussian)
  cosine_coefficients = scale * sine_means

  def one_block(z_grad, inputs):
    block_directions, block_sine_coefficients, block_cosine_coefficients = (
        inputs
    )
    projections = _project(z, block_directions, precision)
    angles = knots[0] * projections
    rotation = (jnp.cos(angles), jnp.sin(angles))

    # The same rotation from knot to knot as in `_characteristic_function`.
    def one_knot(carry, coefficients):
      cosine, sine, projections_grad = carry
      sine_coefficient, cosine_coefficient = coefficients
      projections_grad = (
          projections_grad
          + cosine_coefficient * cosine
          - sine_coefficient * sine
      )
      return (*_rotate(cosine, sine, rotation), projections_grad), None

    (_, _, projections_grad), _ = jax.lax.scan(
        one_knot,
        (*rotation, jnp.zeros_like(projections)),
        (block_sine_coefficients, block_cosine_coefficients),
    )
    z_grad = z_grad + _project(projections_grad, block_directions.T, precision)
    directions_grad = _transpose_matmul(z, projections_grad, precision)
    return z_grad, directions_grad

  z_grad, directions_grad = jax.lax.scan(
      one_block,
      jnp.zeros_like(z),
      (
          _split_columns(directions, num_blocks, block_size),
          _split_columns(sine_coefficients, num_blocks, block_size),
          _split_columns(cosine_coefficients, num_blocks, block_size),
      ),
  )
  return z_grad, _merge_columns(directions_grad, num_slices)


_epps_pulley.defvjp(_epps_pulley_forward, _epps_pulley_backward)


def _sigreg_from_directions(
    z: Array, directions: Array, t_max: float, num_knots: int, precision: Any
) -> Array:
  """Returns the per-slice SIGReg statistics along unit-norm `directions`."""
  knots, weights = _quadrature_grid(t_max, num_knots)
  # The knot t = 0 contributes exactly zero: cos(0) = phi(0) = 1, sin(0) = 0.
  knots, weights = knots[1:], weights[1:]
  return _epps_pulley(
      z.astype(jnp.float32),
      directions.astype(jnp.float32),
      tuple(knots.tolist()),
      tuple(weights.tolist()),
      precision,
  )


@functools.partial(
    jax.jit, static_argnames=("num_slices", "t_max", "num_knots", "precision")
)
def _sigreg_per_slice(
    key: Array,
    z: Array,
    num_slices: int,
    t_max: float,
    num_knots: int,
    precision: Any,
) -> Array:
  directions = unit_directions(key, z.shape[1], num_slices)
  return _sigreg_from_directions(z, directions, t_max, num_knots, precision)


def sigreg_per_slice(
    key: Array,
    z: Array,
    *,
    num_slices: int = 256,
    t_max: float = 3.0,
    num_knots: int = 17,
    precision: Any = None,
) -> Array:
  r"""Computes the SIGReg (Epps-Pulley) statistic of each random slice.

  `M = num_slices` directions `a_m` are drawn uniformly on the unit sphere,
  and the batch is projected onto each, `p_{nm} = z_n \cdot a_m`, without
  centring or standardising. With knots `t_k = k t_max / (T - 1)`,
  `k = 0..T-1`, and the standard normal characteristic function
  `phi(t) = exp(-t^2 / 2)`, each slice's statistic is

  .. math::
    c_{km} = \tfrac{1}{N} \sum_n \cos(t_k p_{nm}), \quad
    s_{km} = \tfrac{1}{N} \sum_n \sin(t_k p_{nm}), \\
    T_m = N \sum_k w_k \bigl[(c_{km} - \phi(t_k))^2 + s_{km}^2\bigr]

  where `w_k = [d, 2d, ..., 2d, d]_k phi(t_k)`, `d = t_max / (T - 1)`, is the
  trapezoid rule on `[0, t_max]` doubled because the integrand is even. The
  defaults (`t_max=3.0`, `num_knots=17`) are the LeJEPA library's grid;
  `**PAPER_GRID` selects the Weak-SIGReg paper's `linspace(-5, 5, 17)` grid.

  Exactly Gaussian projections give about 1.05 per slice at any batch size
  (1.0525 on the default grid, 1.0594 on the paper grid), and the statistic
  grows with the batch size for non-Gaussian data.

  The statistics are computed in float32 whatever the dtype of `z`. Both
  passes loop over blocks of slices and over knots, and the backward pass
  recomputes the projections, so memory stays at a few `[batch, block]`
  arrays of about 2^20 elements each, plus `z` and its gradient. Under
  `jax.jit` with `z` sharded over the batch the statistics are those of the
  global batch.

  Only reverse-mode autodiff is supported (`jax.grad`, `jax.vjp`): the
  memory bound comes from a custom VJP, and `jax.jvp` or `jax.jacfwd` raise
  for custom VJPs.

  Args:
    key: a JAX PRNG key. The directions depend on `key` alone.
    z: features of shape `[batch, channels]`, floating point, batch >= 2.
    num_slices: number of random directions `M`, at least 1.
    t_max: last knot, positive (a Python float).
    num_knots: number of knots `T` on `[0, t_max]`, odd and at least 3.
    precision: matmul precision passed to `jnp.matmul` for the projection.

  Returns:
    A float32 array of shape `[num_slices]`.

  Raises:
    TypeError: when `key` is not a PRNG key, `z` is not an array, or the
      grid or `num_slices` are not Python numbers (under `jax.jit`, mark them
      static).
    ValueError: for a `z` that is not of rank 2, not floating point or has
      fewer than 2 rows or no channels, `num_slices < 1`, `num_knots` even or
      below 3, `t_max <= 0`, or knots so far apart that every knot after
      `t = 0` has zero weight in float32.

  Example:
    >>> import jax
    >>> from sigreg_jax import PAPER_GRID, sigreg_per_slice
    >>> z = jax.random.normal(jax.random.key(1), (256, 32))
    >>> statistics = sigreg_per_slice(jax.random.key(0), z, num_slices=8)
    >>> statistics.shape
    (8,)
    >>> sigreg_per_slice(jax.random.key(0), z, **PAPER_GRID).shape
    (256,)

  References:
    Balestriero and LeCun, "LeJEPA: Provable and Scalable Self-Supervised
    Learning Without the Heuristics", 2025, arXiv:2511.08544.
  """
  _check_key(key)
  _check_features(z)
  num_slices = _check_count(num_slices, "num_slices")
  t_max, num_knots = _check_grid(t_max, num_knots)
  return _sigreg_per_slice(key, z, num_slices, t_max, num_knots, precision)


def sigreg(
    key: Array,
    z: Array,
    *,
    num_slices: int = 256,
    t_max: float = 3.0,
    num_knots: int = 17,
    precision: Any = None,
) -> Array:
  r"""Computes the SIGReg loss: the mean Epps-Pulley statistic over slices.

  .. math::
    \ell = \tfrac{1}{M} \sum_{m=1}^{M} T_m

  with `T_m` the per-slice statistic of `sigreg_per_slice`, which documents
  the directions, knots and weights. The defaults are the LeJEPA library's
  grid (`t = linspace(0, 3, 17)`); pass `**PAPER_GRID` for the Weak-SIGReg
  paper's grid (`linspace(-5, 5, 17)` with the plain trapezoid rule).

  Args:
    key: a JAX PRNG key. The directions depend on `key` alone, so the same
      key gives the same value on every device and host.
    z: features of shape `[batch, channels]`, floating point, batch >= 2.
    num_slices: number of random directions, at least 1.
    t_max: last knot, positive (a Python float).
    num_knots: number of knots on `[0, t_max]`, odd and at least 3.
    precision: matmul precision passed to `jnp.matmul` for the projection.

  Returns:
    A float32 scalar.

  Raises:
    TypeError, ValueError: as `sigreg_per_slice`, which also explains why
      only reverse-mode autodiff is supported.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from sigreg_jax import PAPER_GRID, sigreg
    >>> key = jax.random.key(0)
    >>> z = jax.random.normal(jax.random.key(1), (512, 64))
    >>> loss = sigreg(key, z, num_slices=64, **PAPER_GRID)
    >>> bool(0.5 < loss < 2.0)  # near the Gaussian floor of about 1.06
    True
    >>> grad = jax.grad(sigreg, argnums=1)(key, z)
    >>> bool(jnp.all(jnp.isfinite(grad)))
    True

  References:
    Balestriero and LeCun, "LeJEPA: Provable and Scalable Self-Supervised
    Learning Without the Heuristics", 2025, arXiv:2511.08544.

    Akbar, "Weak-SIGReg: Covariance Regularization for Stable Deep Learning",
    2026, arXiv:2603.05924.
  """
  statistics = sigreg_per_slice(
      key,
      z,
      num_slices=num_slices,
      t_max=t_max,
      num_knots=num_knots,
      precision=precision,
  )
  return jnp.mean(statistics)


# Helpers for training loops.


def step_key(key: Array, step: int | Array) -> Array:
  """Derives the key of one training step: `jax.random.fold_in(key, step)`.

  Args:
    key: the run's regulariser key.
    step: the step number, a Python int in `[0, 2**32)` or an integer scalar
      array.

  Returns:
    A new key, different for every step.

  Raises:
    TypeError: for a key that is not a PRNG key, or a step that is not an
      integer (floats are rejected, not truncated).
    ValueError: for a Python int step outside `[0, 2**32)`.

  Example:
    >>> import jax
    >>> from sigreg_jax import step_key
    >>> key = step_key(jax.random.key(0), 10)
    >>> bool(jax.numpy.all(jax.random.key_data(key)
    ...      == jax.random.key_data(jax.random.fold_in(jax.random.key(0), 10))))
    True
  """
  _check_key(key)
  if isinstance(step, bool):
    raise TypeError(f"step must be an integer, got {step!r}; pass the step counter.")
  if isinstance(step, (int, np.integer)):
    if not 0 <= step < 2**32:
      raise ValueError(
          f"step must be in [0, 2**32), got {step}; pass the training step"
          " counter, which starts at 0."
      )
  elif hasattr(step, "dtype"):
    if not jnp.issubdtype(step.dtype, jnp.integer) or jnp.ndim(step) != 0:
      raise TypeError(
          f"step must be an integer scalar, got an array of dtype {step.dtype}"
          f" and shape {jnp.shape(step)}; pass an integer scalar, for example"
          " step.astype(jnp.int32) for a whole-valued float."
      )
  else:
    raise TypeError(
        f"step must be an integer, got {step!r}; pass the step counter, for"
        " example int(step)."
    )
  return jax.random.fold_in(key, step)


def mean_over_layers(
    regularizer: Callable[..., Array],
    key: Array,
    features: Sequence[Array],
    **kwargs: Any,
) -> Array:
  r"""Averages a regulariser over layers, with an independent key per layer.

  .. math::
    \ell = \tfrac{1}{L} \sum_{l=0}^{L-1}
      \mathrm{regularizer}(\mathrm{fold\_in}(key, l), z_l)

  Args:
    regularizer: `weak_sigreg`, `sigreg` or any function with the signature
      `regularizer(key, z, **kwargs) -> scalar`.
    key: the step's key (see `step_key`).
    features: one `[batch, channels]` array per layer; the channel counts may
      differ.
    **kwargs: keyword arguments passed to every call of `regularizer`.

  Returns:
    A float32 scalar.

  Raises:
    ValueError: when `features` is empty.

  Example:
    >>> import jax
    >>> from sigreg_jax import mean_over_layers, weak_sigreg
    >>> features = [jax.random.normal(jax.random.key(i), (64, 128))
    ...             for i in range(3)]
    >>> loss = mean_over_layers(weak_sigreg, jax.random.key(0), features,
    ...                         num_sketches=32)
    >>> loss.shape
    ()
  """
  _check_key(key)
  features = list(features)
  if not features:
    raise ValueError(
        "features must contain at least one [batch, channels] array, got an"
        " empty sequence."
    )
  losses = [
      regularizer(jax.random.fold_in(key, layer_index), z, **kwargs)
      for layer_index, z in enumerate(features)
  ]
  return jnp.mean(jnp.stack(losses).astype(jnp.float32))
