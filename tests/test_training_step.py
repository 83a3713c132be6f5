"""Tests for the jitted train and eval steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sigreg_jax import models
from sigreg_jax import parallel
from sigreg_jax.training import optimizers
from sigreg_jax.training import step as step_lib
from training_fixtures import tiny_config, tiny_dataset

DATASET = tiny_dataset()


def _build(config, devices, *, total_steps=8, steps_per_epoch=None):
  mesh = parallel.make_data_mesh(devices)
  tx, schedules = optimizers.create_optimizer(
      config.optimizer, total_steps=total_steps, steps_per_epoch=4)
  model = models.create_model(
      config.model, DATASET.num_classes, DATASET.image_shape,
      rngs=nnx.Rngs(params=0, dropout=1))
  train_state = step_lib.TrainState.create(model, tx)
  train_step = step_lib.make_train_step(
      train_state, config, num_classes=DATASET.num_classes, mean=DATASET.mean,
      std=DATASET.std, schedules=schedules, mesh=mesh, steps_per_epoch=steps_per_epoch)
  state = parallel.replicate(mesh, train_state.state)
  return mesh, train_state, train_step, state


def _run(config, devices, num_steps, *, batch_size=16, steps_per_epoch=None):
  mesh, train_state, train_step, state = _build(config, devices, steps_per_epoch=steps_per_epoch)
  key = jax.random.key(7)
  images, labels = DATASET.train_images[:batch_size], DATASET.train_labels[:batch_size]
  history = []
  with jax.set_mesh(mesh):
    for _ in range(num_steps):
      batch = parallel.shard_batch(mesh, (images, labels))
      state, metrics = train_step(state, *batch, key)
      history.append(jax.tree.map(np.asarray, metrics))
  return train_state.replace(state), history


@pytest.mark.parametrize(
    "regularizer, optimizer",
    [("none", "adamw"), ("weak", "adamw"), ("strong", "adamw"), ("weak", "sgd"), ("weak", "muon")],
)
def test_train_step_reduces_loss(regularizer, optimizer):
  # A fixed, unaugmented batch and 64 sketches or slices (no sketch at all
  # for Weak-SIGReg on 32 channels) keep the step-to-step noise small.
  config = tiny_config(regularizer=regularizer, optimizer=optimizer)
  config.augment.crop_padding = 0
  config.augment.flip = False
  config.weak.num_sketches = 64
  config.strong.num_slices = 64
  _, history = _run(config, jax.devices()[:1], num_steps=10)

  losses = np.array([float(metrics["loss"]) for metrics in history])
  cross_entropies = np.array([float(metrics["cross_entropy"]) for metrics in history])
  assert np.all(np.isfinite(losses)), losses
  assert losses[-3:].mean() < losses[:3].mean(), losses
  assert cross_entropies[-3:].mean() < cross_entropies[:3].mean(), cross_entropies


def test_train_step_metrics():
  config = tiny_config(regularizer="weak", optimizer="muon")
  train_state, history = _run(config, jax.devices()[:1], num_steps=2)

  metrics = history[-1]
  expected = {
      "loss", "cross_entropy", "regularizer", "regularizer_per_layer", "accuracy",
      "grad_norm", "update_norm", "param_norm", "learning_rate", "muon_learning_rate",
  }
  assert set(metrics) == expected
  assert metrics["regularizer_per_layer"].shape == (2,)
  np.testing.assert_allclose(metrics["regularizer"], metrics["regularizer_per_layer"].mean(), rtol=1e-6)
  np.testing.assert_allclose(metrics["learning_rate"], 1e-2, rtol=1e-6)
  np.testing.assert_allclose(metrics["muon_learning_rate"], 2e-2, rtol=1e-6)
  assert 0.0 <= metrics["accuracy"] <= 1.0
  assert metrics["update_norm"] > 0.0
  assert train_state.step == 2


def test_baseline_logs_unused_regularizer():
  # The baseline logs Weak-SIGReg of its features; the logged value must not
  # reach the loss or the update.
  config = tiny_config(regularizer="none")
  train_state, history = _run(config, jax.devices()[:1], num_steps=2)
  metrics = history[-1]
  assert metrics["regularizer_per_layer"].shape == (2,)
  assert np.isfinite(metrics["regularizer"])
  np.testing.assert_allclose(metrics["loss"], 0.9 * metrics["cross_entropy"], rtol=1e-6)

  config_zero = tiny_config(regularizer="none")
  config_zero.alpha = 0.0
  _, history_zero = _run(config_zero, jax.devices()[:1], num_steps=1)
  np.testing.assert_allclose(
      history_zero[0]["loss"], history_zero[0]["cross_entropy"], rtol=1e-6)


def test_alpha_warmup_rises_linearly():
  # 0.5 epochs of 4 steps: alpha is 0, 0.05, 0.1, 0.1 at steps 0 to 3.
  config = tiny_config(regularizer="weak")
  config.alpha_warmup_epochs = 0.5
  _, history = _run(config, jax.devices()[:1], num_steps=4, steps_per_epoch=4)

  alphas = [float(metrics["alpha"]) for metrics in history]

  np.testing.assert_allclose(alphas, [0.0, 0.05, 0.1, 0.1], rtol=1e-6, atol=1e-7)
  for alpha, metrics in zip(alphas, history):
    expected = (1 - alpha) * metrics["cross_entropy"] + alpha * metrics["regularizer"]
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)


def test_alpha_warmup_needs_steps_per_epoch():
  config = tiny_config(regularizer="weak")
  config.alpha_warmup_epochs = 1.0

  with pytest.raises(ValueError, match="steps_per_epoch"):
    _build(config, jax.devices()[:1])


def test_train_step_sharded_matches_single_device():
  if jax.device_count() < 4:
    pytest.skip(f"needs 4 devices, found {jax.device_count()}")
  # SGD, because Adam's first step is lr * sign(gradient) and so turns
  # float32 reduction-order noise in near-zero gradients into lr-sized
  # differences.
  config = tiny_config(regularizer="weak", optimizer="sgd")
  config.augment.mix = True

  single_state, single_history = _run(config, jax.devices()[:1], num_steps=1)
  sharded_state, sharded_history = _run(config, jax.devices()[:4], num_steps=1)

  for name, value in single_history[0].items():
    np.testing.assert_allclose(sharded_history[0][name], value, rtol=2e-5, atol=1e-6, err_msg=name)
  single_params = jax.tree.leaves(nnx.state(single_state.merge()[0], nnx.Param))
  sharded_params = jax.tree.leaves(nnx.state(sharded_state.merge()[0], nnx.Param))
  for single, sharded in zip(single_params, sharded_params):
    assert sharded.sharding.is_fully_replicated
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), rtol=2e-5, atol=1e-6)


def test_vit_step_is_deterministic():
  # Stochastic depth and the sketches draw from fold_in(key, step), so the
  # same step from the same state repeats exactly.
  config = tiny_config(regularizer="weak", optimizer="adamw", model="vit")
  mesh, _, train_step, initial_state = _build(config, jax.devices()[:1])
  batch = parallel.shard_batch(mesh, (DATASET.train_images[:16], DATASET.train_labels[:16]))
  key = jax.random.key(7)

  with jax.set_mesh(mesh):
    histories = []
    for _ in range(2):
      state = jax.tree.map(jnp.copy, initial_state)
      history = []
      for _ in range(2):
        state, metrics = train_step(state, *batch, key)
        history.append(jax.tree.map(np.asarray, metrics))
      histories.append(history)

  first, second = histories
  for step_index in range(2):
    for name in first[step_index]:
      np.testing.assert_array_equal(
          first[step_index][name], second[step_index][name], err_msg=name)
  assert np.isfinite(first[-1]["loss"])
  assert first[0]["loss"] != first[1]["loss"]


def test_eval_step_masks_padding():
  config = tiny_config(regularizer="none")
  mesh, train_state, _, state = _build(config, jax.devices()[:1])
  eval_step = step_lib.make_eval_step(
      train_state, num_classes=DATASET.num_classes, mean=DATASET.mean, std=DATASET.std, mesh=mesh)
  images, labels = DATASET.test_images[:8], DATASET.test_labels[:8]
  mask = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)

  with jax.set_mesh(mesh):
    sums, features = eval_step(state, *parallel.shard_batch(mesh, (images, labels, mask)))
    full_sums, _ = eval_step(
        state, *parallel.shard_batch(mesh, (images[:5], labels[:5], np.ones(5, np.float32))))

  assert float(sums["count"]) == 5.0
  np.testing.assert_allclose(sums["loss_sum"], full_sums["loss_sum"], rtol=1e-6)
  np.testing.assert_allclose(sums["correct"], full_sums["correct"])
  assert [z.shape for z in features] == [(8, 32), (8, 32)]
