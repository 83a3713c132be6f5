"""Collapse diagnostics for a batch of features, for logging during training.

Both measures read the eigenvalues of the feature covariance, so they count
how many directions carry the variance: a collapsed representation scores
near 1, an isotropic one near the number of channels.
"""

import jax
import jax.numpy as jnp

from sigreg_jax import regularizers

Array = jax.Array


@jax.jit
def _covariance_eigenvalues(z: Array) -> Array:
  """Returns the covariance eigenvalues of `z` divided by its largest centred entry.

  Both ranks are scale-free, and the rescaling keeps features as large as
  1e25 from overflowing the float32 covariance.
  """
  centered = z.astype(jnp.float32)
  centered = centered - jnp.mean(centered, axis=0)
  scale = jnp.max(jnp.abs(centered))
  # NaN or infinite features give a NaN scale, which the ranks report.
  centered = centered / jnp.where(scale == 0, 1.0, scale)
  covariance = regularizers._covariance(centered)
  # Round-off can leave tiny negative eigenvalues of a positive semi-definite
  # matrix, and they carry no variance.
  return jnp.maximum(jnp.linalg.eigvalsh(covariance), 0.0)


def _propagate_nan(eigenvalues: Array, rank: Array) -> Array:
  # Features with a NaN or an infinity must not read as a collapsed (rank 0)
  # representation in the logs.
  return jnp.where(jnp.all(jnp.isfinite(eigenvalues)), rank, jnp.nan)


def _participation_ratio(eigenvalues: Array) -> Array:
  total = jnp.sum(eigenvalues)
  sum_of_squares = jnp.sum(jnp.square(eigenvalues))
  positive = sum_of_squares > 0
  rank = jnp.where(
      positive,
      jnp.square(total) / jnp.where(positive, sum_of_squares, 1.0),
      0.0,
  )
  return _propagate_nan(eigenvalues, rank)


def _entropy_rank(eigenvalues: Array) -> Array:
  total = jnp.sum(eigenvalues)
  probabilities = eigenvalues / jnp.where(total > 0, total, 1.0)

  # 0 log 0 = 0.
  positive = probabilities > 0
  log_probabilities = jnp.log(jnp.where(positive, probabilities, 1.0))
  entropy = -jnp.sum(jnp.where(positive, probabilities * log_probabilities, 0))

  rank = jnp.where(total > 0, jnp.exp(entropy), 0.0)
  return _propagate_nan(eigenvalues, rank)


def participation_ratio(z: Array) -> Array:
  r"""Computes the participation ratio of the feature covariance.

  With `lambda_i` the eigenvalues of the unbiased covariance of the rows of
  `z`:

  .. math::
    \mathrm{PR} = \frac{(\sum_i \lambda_i)^2}{\sum_i \lambda_i^2}

  It lies in `[1, min(batch - 1, channels)]`, is 0 for a batch with no
  variance at all, and is NaN when `z` contains a NaN or an infinity.

  Args:
    z: features of shape `[batch, channels]`, floating point, batch >= 2; a
      NumPy array works too.

  Returns:
    A float32 scalar.

  Raises:
    ValueError: when `z` is not of rank 2, not floating point, or has fewer
      than 2 rows.

  Example:
    >>> import jax.numpy as jnp
    >>> from sigreg_jax import participation_ratio
    >>> z = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> print(f"{participation_ratio(z):.3f}")
    2.000
  """
  regularizers._check_features(z)
  return _participation_ratio(_covariance_eigenvalues(z))


def entropy_effective_rank(z: Array) -> Array:
  r"""Computes the entropy effective rank of the feature covariance.

  With `lambda_i` the eigenvalues of the unbiased covariance of the rows of
  `z` and `p_i = lambda_i / sum_j lambda_j`:

  .. math::
    \mathrm{erank} = \exp\bigl(-\textstyle\sum_i p_i \log p_i\bigr)

  Roy and Vetterli define it on the singular values of a matrix. Here it is
  applied to the covariance eigenvalues, which are the squared singular
  values of the centred batch divided by `batch - 1`. It lies in
  `[1, min(batch - 1, channels)]`, is 0 for a batch with no variance at
  all, and is NaN when `z` contains a NaN or an infinity.

  Args:
    z: features of shape `[batch, channels]`, floating point, batch >= 2; a
      NumPy array works too.

  Returns:
    A float32 scalar.

  Raises:
    ValueError: as `participation_ratio`.

  Example:
    >>> import jax.numpy as jnp
    >>> from sigreg_jax import entropy_effective_rank
    >>> z = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> print(f"{entropy_effective_rank(z):.3f}")
    2.000

  References:
    Roy and Vetterli, "The effective rank: A measure of effective
    dimensionality", EUSIPCO 2007.
  """
  regularizers._check_features(z)
  return _entropy_rank(_covariance_eigenvalues(z))


def effective_rank(z: Array) -> dict[str, Array]:
  """Computes both effective ranks of the feature covariance at once.

  Args:
    z: features of shape `[batch, channels]`, floating point, batch >= 2; a
      NumPy array works too.

  Returns:
    A dict with float32 scalars `participation_ratio` (see
    `participation_ratio`) and `entropy_rank` (see `entropy_effective_rank`),
    from one eigendecomposition.

  Raises:
    ValueError: as `participation_ratio`.

  Example:
    >>> import jax
    >>> from sigreg_jax import effective_rank
    >>> ranks = effective_rank(jax.random.normal(jax.random.key(0), (512, 8)))
    >>> sorted(ranks)
    ['entropy_rank', 'participation_ratio']
    >>> bool(7.0 < ranks["participation_ratio"] <= 8.0)
    True
  """
  regularizers._check_features(z)
  eigenvalues = _covariance_eigenvalues(z)
  return {
      "participation_ratio": _participation_ratio(eigenvalues),
      "entropy_rank": _entropy_rank(eigenvalues),
  }
