"""Tests of the effective-rank diagnostics against float64 NumPy."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sigreg_jax


def covariance_eigenvalues_reference(z: np.ndarray) -> np.ndarray:
  z = np.asarray(z, np.float64)
  centered = z - z.mean(axis=0)
  covariance = centered.T @ centered / (z.shape[0] - 1)
  return np.clip(np.linalg.eigvalsh(covariance), 0.0, None)


def anisotropic_features(seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  scales = np.array([3.0, 2.0, 1.0, 0.5, 0.1, 0.01])
  return (rng.standard_normal((200, 6)) * scales).astype(np.float32)


def test_participation_ratio_matches_float64():
  z = anisotropic_features(0)
  eigenvalues = covariance_eigenvalues_reference(z)

  value = sigreg_jax.participation_ratio(z)

  expected = eigenvalues.sum() ** 2 / np.square(eigenvalues).sum()
  np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_entropy_rank_matches_float64():
  z = anisotropic_features(1)
  probabilities = covariance_eigenvalues_reference(z)
  probabilities = probabilities / probabilities.sum()

  value = sigreg_jax.entropy_effective_rank(z)

  expected = np.exp(-np.sum(probabilities * np.log(probabilities)))
  np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_effective_rank_returns_both():
  z = anisotropic_features(2)

  ranks = sigreg_jax.effective_rank(z)

  assert set(ranks) == {"participation_ratio", "entropy_rank"}
  np.testing.assert_allclose(
      ranks["participation_ratio"], sigreg_jax.participation_ratio(z)
  )
  np.testing.assert_allclose(
      ranks["entropy_rank"], sigreg_jax.entropy_effective_rank(z)
  )


def test_rank_one_features_score_one():
  direction = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
  weights = np.random.default_rng(3).standard_normal((64, 1))
  z = (weights * direction).astype(np.float32)

  ranks = sigreg_jax.effective_rank(z)

  np.testing.assert_allclose(ranks["participation_ratio"], 1.0, rtol=1e-4)
  np.testing.assert_allclose(ranks["entropy_rank"], 1.0, rtol=1e-3)


def test_isotropic_features_score_near_channels():
  z = np.random.default_rng(4).standard_normal((4096, 16)).astype(np.float32)

  ranks = sigreg_jax.effective_rank(z)

  assert 15.0 < float(ranks["participation_ratio"]) <= 16.0
  assert 15.0 < float(ranks["entropy_rank"]) <= 16.0


def test_collapsed_features_score_zero():
  ranks = sigreg_jax.effective_rank(jnp.ones((16, 8)))

  assert float(ranks["participation_ratio"]) == 0.0
  assert float(ranks["entropy_rank"]) == 0.0


def test_low_precision_features_use_float32():
  z = anisotropic_features(5)

  value = sigreg_jax.participation_ratio(z.astype(jnp.bfloat16))

  assert value.dtype == jnp.float32
  np.testing.assert_allclose(
      value, sigreg_jax.participation_ratio(z), rtol=0.01
  )


def test_works_under_jit():
  z = anisotropic_features(6)

  value = jax.jit(sigreg_jax.entropy_effective_rank)(z)

  np.testing.assert_allclose(
      value, sigreg_jax.entropy_effective_rank(z), rtol=1e-6
  )


@pytest.mark.parametrize(
    "z, message",
    [
        (np.zeros((4, 3, 2), np.float32), "pool or flatten"),
        (np.zeros((4, 3), np.int32), "floating-point dtype"),
        (np.zeros((1, 3), np.float32), "at least 2"),
    ],
    ids=["rank3", "integer", "batch1"],
)
def test_invalid_features_raise(z, message):
  with pytest.raises(ValueError, match=message):
    sigreg_jax.effective_rank(z)


@pytest.mark.parametrize("scale", [1e-20, 1e25])
def test_ranks_are_scale_free(scale):
  z = anisotropic_features(2)

  scaled = sigreg_jax.effective_rank(z * np.float32(scale))
  expected = sigreg_jax.effective_rank(z)

  np.testing.assert_allclose(scaled["participation_ratio"], expected["participation_ratio"],
                             rtol=1e-4)
  np.testing.assert_allclose(scaled["entropy_rank"], expected["entropy_rank"], rtol=1e-4)


def test_rank_at_most_batch_minus_one():
  z = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)

  ranks = sigreg_jax.effective_rank(z)

  assert float(ranks["participation_ratio"]) <= 3.0 + 1e-4
  assert float(ranks["entropy_rank"]) <= 3.0 + 1e-4


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_features_give_nan(bad_value):
  # A NaN must not read as a fully collapsed (rank 0) representation.
  z = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
  z[3, 2] = bad_value

  ranks = sigreg_jax.effective_rank(z)

  assert np.isnan(ranks["participation_ratio"])
  assert np.isnan(ranks["entropy_rank"])
  assert np.isnan(sigreg_jax.participation_ratio(z))
  assert np.isnan(sigreg_jax.entropy_effective_rank(z))


@pytest.mark.parametrize(
    "function",
    [
        sigreg_jax.participation_ratio,
        sigreg_jax.entropy_effective_rank,
        sigreg_jax.effective_rank,
    ],
    ids=lambda function: function.__name__,
)
def test_docstring_example_runs(function):
  parser = doctest.DocTestParser()
  test = parser.get_doctest(function.__doc__, {}, function.__name__, None, 0)
  runner = doctest.DocTestRunner()

  runner.run(test)

  assert test.examples
  assert runner.summarize(verbose=False).failed == 0
