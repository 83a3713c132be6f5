"""Tests for the optimisers and learning-rate schedules built from a config."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sigreg_jax.training import config as config_lib
from sigreg_jax.training import optimizers


def _optimizer_config(**overrides):
  config = config_lib.default_config().optimizer
  config.update(overrides)
  return config


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return {
      "kernel": jnp.asarray(rng.normal(size=(8, 4)), jnp.float32),
      "bias": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
      "conv": jnp.asarray(rng.normal(size=(2, 2, 3, 4)), jnp.float32),
  }


def _one_update(config, params, grads, total_steps=10):
  tx, _ = optimizers.create_optimizer(config, total_steps=total_steps, steps_per_epoch=5)
  updates, _ = tx.update(grads, tx.init(params), params)
  return updates


def test_cosine_schedule_endpoints():
  config = _optimizer_config(schedule="cosine", final_learning_rate=1e-5)
  schedule = optimizers.make_schedule(1e-3, config, total_steps=100, steps_per_epoch=10)
  np.testing.assert_allclose(schedule(0), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(schedule(50), (1e-3 + 1e-5) / 2, rtol=1e-5)
  np.testing.assert_allclose(schedule(100), 1e-5, rtol=1e-5)


def test_cosine_schedule_without_warmup_is_quiet(caplog):
  config = _optimizer_config(schedule="cosine", final_learning_rate=1e-5)
  expected = optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=1e-3, warmup_steps=0, decay_steps=100, end_value=1e-5)
  caplog.set_level(logging.INFO)
  caplog.clear()

  schedule = optimizers.make_schedule(1e-3, config, total_steps=100, steps_per_epoch=10)
  values = [float(schedule(step)) for step in (0, 1, 37, 99, 100, 150)]

  np.testing.assert_allclose(values, [float(expected(step)) for step in (0, 1, 37, 99, 100, 150)],
                             rtol=1e-6)
  assert "transition_steps" not in caplog.text


def test_cosine_schedule_zero_learning_rate():
  config = _optimizer_config(schedule="cosine")

  schedule = optimizers.make_schedule(0.0, config, total_steps=10, steps_per_epoch=5)

  assert float(schedule(3)) == 0.0


def test_cosine_schedule_warmup():
  config = _optimizer_config(schedule="cosine", warmup_epochs=2.0)
  schedule = optimizers.make_schedule(1.0, config, total_steps=100, steps_per_epoch=10)
  np.testing.assert_allclose(schedule(0), 0.0, atol=1e-7)
  np.testing.assert_allclose(schedule(10), 0.5, rtol=1e-6)
  np.testing.assert_allclose(schedule(20), 1.0, rtol=1e-6)
  assert float(schedule(60)) < 1.0


def test_constant_schedule_with_warmup():
  config = _optimizer_config(schedule="constant", warmup_epochs=1.0)
  schedule = optimizers.make_schedule(0.1, config, total_steps=100, steps_per_epoch=10)
  np.testing.assert_allclose(schedule(5), 0.05, rtol=1e-6)
  np.testing.assert_allclose(schedule(10), 0.1, rtol=1e-6)
  np.testing.assert_allclose(schedule(99), 0.1, rtol=1e-6)


def test_schedule_rejects_long_warmup():
  config = _optimizer_config(warmup_epochs=20.0)
  with pytest.raises(ValueError, match="warmup"):
    optimizers.make_schedule(0.1, config, total_steps=100, steps_per_epoch=10)


def test_create_optimizer_rejects_unknown_name():
  with pytest.raises(ValueError, match="optimizer.name must be one of"):
    optimizers.create_optimizer(_optimizer_config(name="lamb"), total_steps=10, steps_per_epoch=5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(name="muon", muon_learning_rate=-1e-2), "muon_learning_rate"),
    ],
)
def test_create_optimizer_rejects_bad_rate(overrides, field):
  config = _optimizer_config(**overrides)
  with pytest.raises(ValueError, match=f"optimizer.{field} must be positive"):
    optimizers.create_optimizer(config, total_steps=10, steps_per_epoch=5)


def test_adamw_decay_is_decoupled_and_scaled_by_lr():
  # With zero gradients Adam's direction is 0, so the update is the decay
  # alone: -lr * weight_decay * param, as torch.optim.AdamW.
  config = _optimizer_config(name="adamw", learning_rate=0.1, weight_decay=0.5, schedule="constant")
  params = _params()
  updates = _one_update(config, params, jax.tree.map(jnp.zeros_like, params))
  for name in params:
    np.testing.assert_allclose(updates[name], -0.1 * 0.5 * params[name], rtol=1e-6)


def test_weight_decay_mask_matrices_skips_vectors():
  config = _optimizer_config(
      name="adamw", learning_rate=0.1, weight_decay=0.5, schedule="constant",
      weight_decay_mask="matrices")
  params = _params()
  updates = _one_update(config, params, jax.tree.map(jnp.zeros_like, params))
  np.testing.assert_allclose(updates["bias"], 0.0)
  np.testing.assert_allclose(updates["kernel"], -0.05 * params["kernel"], rtol=1e-6)
  np.testing.assert_allclose(updates["conv"], -0.05 * params["conv"], rtol=1e-6)


def test_sgd_decay_is_added_to_gradient():
  config = _optimizer_config(
      name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=0.5, schedule="constant")
  params = _params()
  grads = _params(seed=1)
  updates = _one_update(config, params, grads)
  for name in params:
    np.testing.assert_allclose(
        updates[name], -0.1 * (grads[name] + 0.5 * params[name]), rtol=1e-5)


def test_grad_clip_norm_limits_update():
  config = _optimizer_config(
      name="sgd", learning_rate=1.0, weight_decay=0.0, schedule="constant", grad_clip_norm=1.0)
  params = _params()
  grads = jax.tree.map(lambda g: 100.0 * g, _params(seed=2))
  updates = _one_update(config, params, grads)
  np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-5)


def test_muon_labels_by_rank():
  assert optimizers.muon_labels(_params()) == {"kernel": "muon", "bias": "adam", "conv": "adam"}


def test_muon_splits_matrices_from_rest():
  config = _optimizer_config(
      name="muon", learning_rate=1e-3, muon_learning_rate=1e-2, weight_decay=0.0,
      schedule="constant", adam_b1=0.9, adam_b2=0.95)
  params = _params()
  grads = _params(seed=3)
  updates = _one_update(config, params, grads)

  # Newton-Schulz leaves singular values near 1 (within its approximation),
  # scaled by the Muon learning rate.
  singular_values = np.linalg.svd(np.asarray(updates["kernel"]) / 1e-2, compute_uv=False)
  assert np.all((singular_values > 0.5) & (singular_values < 1.5)), singular_values

  adam = optax.adamw(1e-3, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0)
  rest = {"bias": params["bias"], "conv": params["conv"]}
  rest_grads = {"bias": grads["bias"], "conv": grads["conv"]}
  expected, _ = adam.update(rest_grads, adam.init(rest), rest)
  for name in rest:
    np.testing.assert_allclose(updates[name], expected[name], rtol=1e-5)


def test_muon_schedules_logged():
  config = _optimizer_config(name="muon", schedule="constant")
  _, schedules = optimizers.create_optimizer(config, total_steps=10, steps_per_epoch=5)
  assert set(schedules) == {"learning_rate", "muon_learning_rate"}
  np.testing.assert_allclose(schedules["muon_learning_rate"](3), 1e-2, rtol=1e-6)
