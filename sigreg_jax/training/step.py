"""Jitted training and evaluation steps for an NNX model and optimiser.

The model and ``nnx.Optimizer`` are split once into a static graph, their RNG
streams and the train state (parameters, optimiser state, step count). The
train state is what the steps update, donate and checkpoint. Every random draw
of step ``s`` comes from ``fold_in(train_key, s)``, so a run resumed from a
checkpoint repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from sigreg_jax import parallel
from sigreg_jax import regularizers
from sigreg_jax.data import augment
from sigreg_jax.training import loss as loss_lib
from sigreg_jax.training import metrics as metrics_lib


@dataclasses.dataclass(frozen=True)
class TrainState:
  """A model and its optimiser, split for ``jax.jit``.

  Attributes:
    graphdef: the static structure of ``(model, optimizer)``.
    rng_state: the model's RNG stream variables. The train step reseeds the
      ``"dropout"`` stream from the step key, so these are not checkpointed.
    state: parameters, optimiser state and step count (``state[1]["step"]``):
      everything a checkpoint must hold.
  """

  graphdef: nnx.GraphDef
  rng_state: nnx.State
  state: nnx.State

  @classmethod
  def create(cls, model: nnx.Module, tx: optax.GradientTransformation) -> "TrainState":
    """Wraps ``model`` in an ``nnx.Optimizer`` over its ``nnx.Param``s and splits both."""
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, rng_state, state = nnx.split((model, optimizer), nnx.RngState, ...)
    return cls(graphdef, rng_state, state)

  def merge(self, state: nnx.State | None = None) -> tuple[nnx.Module, nnx.Optimizer]:
    """Rebuilds ``(model, optimizer)``, from ``state`` when given."""
    return nnx.merge(self.graphdef, self.rng_state, self.state if state is None else state)

  def replace(self, state: nnx.State) -> "TrainState":
    return dataclasses.replace(self, state=state)

  @property
  def step(self) -> int:
    """The number of optimiser steps taken (host int; blocks until known)."""
    return int(self.state[1]["step"][...])


def _step_keys(train_key: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Splits ``fold_in(train_key, step)`` into augmentation, regulariser and dropout keys."""
  key = jax.random.fold_in(train_key, step)
  augment_key, regularizer_key, dropout_key = jax.random.split(key, 3)
  return augment_key, regularizer_key, dropout_key


def make_train_step(
    train_state: TrainState,
    config: Any,
    *,
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    schedules: dict[str, optax.Schedule],
    mesh: Mesh,
    steps_per_epoch: int | None = None,
) -> Callable[[nnx.State, jax.Array, jax.Array, jax.Array], tuple[nnx.State, dict[str, jax.Array]]]:
  """Builds the jitted train step ``(state, images, labels, train_key) -> (state, metrics)``.

  One step: draw the step's keys from ``fold_in(train_key, step)``, augment
  the uint8 batch on device (crop, flip, RandAugment, MixUp/CutMix as
  ``config.augment`` selects), run the model in train mode, compute
  ``(1 - alpha) * CE + alpha * mean_l R(features[l])`` and apply the optax
  update. ``state`` is donated: do not use it after the call.

  Args:
    train_state: the split model and optimiser; its graph and RNG streams are
      baked into the step.
    config: the run config (``regularizer``, ``alpha``, ``weak``, ``strong``,
      ``augment``).
    num_classes: number of classes of the dataset.
    mean: per-channel normalisation mean.
    std: per-channel normalisation standard deviation.
    schedules: learning-rate schedules to log, keyed by metric name.
    mesh: the data mesh; the state is kept replicated on it.
    steps_per_epoch: optimiser steps per epoch, needed only when
      ``config.alpha_warmup_epochs`` is above 0.

  Returns:
    The jitted step. Its inputs: ``state`` (replicated), ``images`` uint8
    ``[batch, H, W, C]`` and ``labels`` int32 ``[batch]`` sharded over
    ``"data"``, ``train_key`` a PRNG key. Its metrics (scalars unless noted):
    ``loss``, ``cross_entropy``, ``accuracy`` (against the argmax of the soft
    labels), ``grad_norm`` (before clipping), ``param_norm`` (after the
    update), ``update_norm``, each schedule's learning rate, ``regularizer``
    and ``regularizer_per_layer`` (``[num_layers]``). Without a regulariser
    (``config.regularizer == "none"``) the last two are Weak-SIGReg values
    with ``config.weak``'s settings, logged but not part of the loss. While
    ``config.alpha_warmup_epochs`` is above 0, ``alpha`` (the weight of this
    step) is logged too.

  Raises:
    ValueError: if ``config.alpha_warmup_epochs`` is above 0 and
      ``steps_per_epoch`` is None.
  """
  regularizer, regularizer_kwargs = loss_lib.make_regularizer(config)
  alpha_value = loss_lib.resolve_alpha(config.regularizer, config.alpha)
  warmup_epochs = config.get("alpha_warmup_epochs", 0.0)
  if warmup_epochs and steps_per_epoch is None:
    raise ValueError(
        f"config.alpha_warmup_epochs={warmup_epochs} needs steps_per_epoch; pass"
        " make_train_step(..., steps_per_epoch=...)")
  alpha_warmup = loss_lib.alpha_schedule(alpha_value, warmup_epochs, steps_per_epoch or 1)
  augment_config = config.augment

  def train_step(state, rng_state, images, labels, train_key):
    model, optimizer = nnx.merge(train_state.graphdef, rng_state, state)
    model.train()
    step = optimizer.step[...]
    augment_key, regularizer_key, dropout_key = _step_keys(train_key, step)
    nnx.reseed(model, dropout=dropout_key)
    alpha = alpha_value if alpha_warmup is None else alpha_warmup(step)

    images, soft_labels = augment.augment_batch(
        augment_key, images, labels,
        num_classes=num_classes, config=augment_config, mean=mean, std=std,
    )

    def loss_fn(model):
      logits, features = model(images)
      loss, aux = loss_lib.total_loss(
          logits, soft_labels, features, regularizer_key,
          regularizer=regularizer, alpha=alpha, regularizer_kwargs=regularizer_kwargs,
      )
      aux["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == jnp.argmax(soft_labels, -1))

      if regularizer is None:
        # The baseline logs Weak-SIGReg of its features without training on
        # it, so plots show baseline and regularised runs on one scale.
        monitored = [jax.lax.stop_gradient(z) for z in features]
        per_layer = loss_lib.regularizer_per_layer(
            regularizers.weak_sigreg, regularizer_key, monitored, **dict(config.weak))
        aux["regularizer"] = per_layer.mean()
        aux["regularizer_per_layer"] = per_layer
      return loss, aux

    (loss, aux), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    updates = optimizer.update(model, grads)

    metrics = {"loss": loss, **aux}
    metrics["grad_norm"] = metrics_lib.global_norm(nnx.state(grads, nnx.Param))
    metrics["update_norm"] = metrics_lib.global_norm(updates)
    metrics["param_norm"] = metrics_lib.global_norm(nnx.state(model, nnx.Param))
    for name, schedule in schedules.items():
      metrics[name] = jnp.asarray(schedule(step), jnp.float32)
    if alpha_warmup is not None:
      metrics["alpha"] = jnp.asarray(alpha, jnp.float32)

    _, _, new_state = nnx.split((model, optimizer), nnx.RngState, ...)
    return new_state, metrics

  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(train_step, donate_argnums=(0,), out_shardings=(replicated, replicated))

  # The RNG variables go through jit as an argument: variables captured from
  # outside the trace cannot be reseeded inside it.
  def run_step(state, images, labels, train_key):
    return jitted(state, train_state.rng_state, images, labels, train_key)

  return run_step


def make_eval_step(
    train_state: TrainState,
    *,
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    mesh: Mesh,
) -> Callable[..., tuple[dict[str, jax.Array], list[jax.Array]]]:
  """Builds the jitted eval step ``(state, images, labels, mask) -> (sums, features)``.

  The model runs in eval mode (no stochastic depth) on normalised, unaugmented
  images. ``mask`` (float ``[batch]``, 1 for real rows and 0 for padding) lets
  the last, partial batch be padded to the full batch size.

  Returns:
    The jitted step. Its first output, ``sums``, has the replicated scalars
    ``loss_sum`` (summed cross-entropy), ``correct`` (top-1 hits) and
    ``count`` (real rows). Its second output, ``features``, is the model's
    list of per-layer ``[batch, channels]`` arrays, sharded over ``"data"``.
  """

  def eval_step(state, rng_state, images, labels, mask):
    model, _ = nnx.merge(train_state.graphdef, rng_state, state)
    model.eval()
    images, one_hot = augment.prepare_eval_batch(
        images, labels, num_classes=num_classes, mean=mean, std=std)
    logits, features = model(images)
    logits = logits.astype(jnp.float32)

    cross_entropy = optax.softmax_cross_entropy(logits, one_hot)
    hits = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    sums = {
        "loss_sum": jnp.sum(cross_entropy * mask),
        "correct": jnp.sum(hits * mask),
        "count": jnp.sum(mask),
    }
    return sums, [z.astype(jnp.float32) for z in features]

  replicated = parallel.replicated_sharding(mesh)
  jitted = jax.jit(eval_step, out_shardings=(replicated, parallel.batch_sharding(mesh)))

  def run_step(state, images, labels, mask):
    return jitted(state, train_state.rng_state, images, labels, mask)

  return run_step
