"""Tests for the soft-label cross-entropy and the regularised total loss."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sigreg_jax import regularizers
from sigreg_jax.training import loss as loss_lib


def _logits_and_labels(seed=0, batch=6, num_classes=5):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(batch, num_classes)).astype(np.float32)
  labels = rng.dirichlet(np.ones(num_classes), size=batch).astype(np.float32)
  return jnp.asarray(logits), jnp.asarray(labels)


def test_soft_cross_entropy_matches_numpy():
  logits, labels = _logits_and_labels()
  log_probs = np.asarray(logits, np.float64)
  log_probs = log_probs - np.log(np.exp(log_probs).sum(-1, keepdims=True))
  expected = -(np.asarray(labels, np.float64) * log_probs).sum(-1).mean()

  actual = jax.jit(loss_lib.soft_cross_entropy)(logits, labels)

  np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_soft_cross_entropy_shape_mismatch():
  with pytest.raises(ValueError, match="same shape"):
    loss_lib.soft_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


@pytest.mark.parametrize(
    "regularizer, alpha, expected",
    [("none", None, 0.1), ("none", 0.0, 0.0), ("weak", None, 0.1), ("strong", None, 0.01), ("weak", 0.3, 0.3)],
)
def test_resolve_alpha(regularizer, alpha, expected):
  assert loss_lib.resolve_alpha(regularizer, alpha) == expected


def test_resolve_alpha_rejects_invalid():
  with pytest.raises(ValueError, match="regularizer must be one of"):
    loss_lib.resolve_alpha("medium", None)
  with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
    loss_lib.resolve_alpha("weak", 1.5)


def _config(name):
  return ml_collections.ConfigDict(dict(
      regularizer=name,
      weak=dict(num_sketches=4, sketch="gaussian"),
      strong=dict(num_slices=4, t_max=5.0, num_knots=9),
  ))


def test_alpha_schedule_warms_up_linearly():
  schedule = loss_lib.alpha_schedule(0.1, warmup_epochs=2.0, steps_per_epoch=5)

  values = [float(schedule(step)) for step in (0, 5, 10, 50)]

  np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.1], rtol=1e-6, atol=1e-8)
  assert loss_lib.alpha_schedule(0.1, warmup_epochs=0.0, steps_per_epoch=5) is None


def test_alpha_schedule_short_warmup_rounds_up():
  schedule = loss_lib.alpha_schedule(0.1, warmup_epochs=0.05, steps_per_epoch=8)

  assert schedule is not None
  np.testing.assert_allclose([float(schedule(0)), float(schedule(1))], [0.0, 0.1], atol=1e-8)


@pytest.mark.parametrize("warmup_epochs", [-1.0, "five", float("nan"), float("inf"), 1e12])
def test_alpha_schedule_rejects_invalid(warmup_epochs):
  with pytest.raises(ValueError, match="alpha_warmup_epochs"):
    loss_lib.alpha_schedule(0.1, warmup_epochs=warmup_epochs, steps_per_epoch=5)


def test_make_regularizer_selects_function():
  assert loss_lib.make_regularizer(_config("none")) == (None, {})
  function, kwargs = loss_lib.make_regularizer(_config("weak"))
  assert function is regularizers.weak_sigreg
  assert kwargs == {"num_sketches": 4, "sketch": "gaussian"}
  function, kwargs = loss_lib.make_regularizer(_config("strong"))
  assert function is regularizers.sigreg
  assert kwargs == {"num_slices": 4, "t_max": 5.0, "num_knots": 9}


@pytest.mark.parametrize("name", ["weak", "strong"])
def test_total_loss_formula(name):
  logits, labels = _logits_and_labels()
  rng = np.random.default_rng(1)
  features = [jnp.asarray(rng.normal(size=(6, 8)), jnp.float32) for _ in range(3)]
  key = jax.random.key(3)
  function, kwargs = loss_lib.make_regularizer(_config(name))

  loss, aux = loss_lib.total_loss(
      logits, labels, features, key, regularizer=function, alpha=0.25, regularizer_kwargs=kwargs)

  expected_regularizer = regularizers.mean_over_layers(function, key, features, **kwargs)
  cross_entropy = loss_lib.soft_cross_entropy(logits, labels)
  np.testing.assert_allclose(aux["regularizer"], expected_regularizer, rtol=1e-6)
  np.testing.assert_allclose(aux["regularizer_per_layer"].mean(), expected_regularizer, rtol=1e-6)
  assert aux["regularizer_per_layer"].shape == (3,)
  np.testing.assert_allclose(aux["cross_entropy"], cross_entropy, rtol=1e-6)
  np.testing.assert_allclose(loss, 0.75 * cross_entropy + 0.25 * expected_regularizer, rtol=1e-6)


def test_total_loss_baseline_scales_cross_entropy():
  logits, labels = _logits_and_labels()
  loss, aux = loss_lib.total_loss(
      logits, labels, [], jax.random.key(0), regularizer=None, alpha=0.1)
  np.testing.assert_allclose(loss, 0.9 * aux["cross_entropy"], rtol=1e-6)
  assert set(aux) == {"cross_entropy"}


def test_regularizer_per_layer_rejects_empty():
  with pytest.raises(ValueError, match="features is empty"):
    loss_lib.regularizer_per_layer(regularizers.weak_sigreg, jax.random.key(0), [])
