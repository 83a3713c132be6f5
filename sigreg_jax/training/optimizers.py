"""Optax optimisers and learning-rate schedules built from a run config.

Weight decay follows the PyTorch optimisers that the Weak-SIGReg runs
(Akbar, 2026, arXiv 2603.05924) used: decoupled and multiplied by the learning
rate for AdamW and Muon (``torch.optim.AdamW``), added to the gradient before
momentum for SGD (``torch.optim.SGD``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from optax import contrib as optax_contrib

OPTIMIZERS = ("adamw", "sgd", "muon")
SCHEDULES = ("cosine", "constant")
WEIGHT_DECAY_MASKS = ("all", "matrices")

# Momentum of Muon's orthogonalised update when the config sets none; the
# default of optax.contrib.muon (optax 0.2.8) and of the reference Muon.
MUON_DEFAULT_MOMENTUM = 0.95


def make_schedule(
    base_learning_rate: float,
    config_optimizer: Any,
    *,
    total_steps: int,
    steps_per_epoch: int,
) -> optax.Schedule:
  """Builds the learning-rate schedule, per optimiser step.

  ``"cosine"`` warms up linearly from 0 over ``warmup_epochs`` and then decays
  with a half cosine to ``final_learning_rate`` at ``total_steps``;
  ``"constant"`` keeps ``base_learning_rate`` (warmup still applies).

  Args:
    base_learning_rate: the peak learning rate.
    config_optimizer: ConfigDict with ``schedule``, ``warmup_epochs`` and
      ``final_learning_rate``.
    total_steps: optimiser steps of the whole run (epochs times steps per
      epoch); the cosine reaches its floor here.
    steps_per_epoch: optimiser steps per epoch, to convert ``warmup_epochs``.

  Returns:
    A function from the step count to the learning rate.

  Example:
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(
    ...     schedule="cosine", warmup_epochs=0.0, final_learning_rate=0.0))
    >>> schedule = make_schedule(1.0, config, total_steps=10, steps_per_epoch=5)
    >>> float(schedule(0)), float(schedule(10))
    (1.0, 0.0)
  """
  name = config_optimizer.schedule
  if name not in SCHEDULES:
    raise ValueError(f"optimizer.schedule must be one of {SCHEDULES}, got {name!r}")
  if total_steps <= 0:
    raise ValueError(f"total_steps must be positive, got {total_steps}")
  warmup_steps = int(round(config_optimizer.warmup_epochs * steps_per_epoch))
  if not 0 <= warmup_steps < total_steps:
    raise ValueError(
        f"optimizer.warmup_epochs={config_optimizer.warmup_epochs} gives "
        f"{warmup_steps} warmup steps, which must be in [0, {total_steps}) "
        "(the total number of steps); shorten the warmup"
    )

  if name == "constant":
    if warmup_steps == 0:
      return optax.constant_schedule(base_learning_rate)
    return optax.join_schedules(
        [
            optax.linear_schedule(0.0, base_learning_rate, warmup_steps),
            optax.constant_schedule(base_learning_rate),
        ],
        [warmup_steps],
    )

  if warmup_steps == 0:
    # optax's warmup variant logs an INFO line about its zero-step linear phase.
    end_fraction = (
        config_optimizer.final_learning_rate / base_learning_rate
        if base_learning_rate else 0.0
    )
    return optax.cosine_decay_schedule(
        base_learning_rate, decay_steps=total_steps, alpha=end_fraction
    )
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=base_learning_rate,
      warmup_steps=warmup_steps,
      decay_steps=total_steps,
      end_value=config_optimizer.final_learning_rate,
  )


def weight_decay_mask(name: str) -> Callable[[Any], Any] | None:
  """Returns the optax mask selecting the parameters that get weight decay.

  ``"all"`` decays every parameter, which is optax's None mask.
  ``"matrices"`` decays only parameters with two or more dimensions, so biases,
  norm scales and other vectors are not decayed.
  """
  if name not in WEIGHT_DECAY_MASKS:
    raise ValueError(f"optimizer.weight_decay_mask must be one of {WEIGHT_DECAY_MASKS}, got {name!r}")
  if name == "all":
    return None
  return lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)


def muon_labels(params: Any) -> Any:
  """Labels 2-D parameters ``"muon"`` and all others ``"adam"``.

  Linear kernels and any other weight stored as a matrix are orthogonalised
  by Muon. Biases, norm scales, convolution kernels and embeddings of other
  ranks are updated by Adam.
  """
  return jax.tree.map(lambda p: "muon" if p.ndim == 2 else "adam", params)


def _make_muon(config_optimizer: Any, muon_schedule: optax.Schedule,
               adam_schedule: optax.Schedule) -> optax.GradientTransformation:
  """Muon on 2-D parameters, AdamW on the rest, both with decoupled decay."""
  mask = weight_decay_mask(config_optimizer.weight_decay_mask)
  momentum = config_optimizer.momentum
  muon = optax_contrib.muon(
      learning_rate=muon_schedule,
      beta=MUON_DEFAULT_MOMENTUM if momentum is None else momentum,
      eps=config_optimizer.eps,
      weight_decay=config_optimizer.weight_decay,
      weight_decay_mask=mask,
      nesterov=True,
  )
  # Adam for the non-matrix parameters is built here, not taken from inside
  # optax.contrib.muon, because that one applies Nesterov momentum to Adam too
  # and accepts no weight-decay mask.
  adam = optax.adamw(
      learning_rate=adam_schedule,
      b1=config_optimizer.adam_b1,
      b2=config_optimizer.adam_b2,
      eps=config_optimizer.eps,
      weight_decay=config_optimizer.weight_decay,
      mask=mask,
  )
  return optax.partition({"muon": muon, "adam": adam}, muon_labels)


def create_optimizer(
    config_optimizer: Any,
    *,
    total_steps: int,
    steps_per_epoch: int,
) -> tuple[optax.GradientTransformation, dict[str, optax.Schedule]]:
  """Builds the optax optimiser described by ``config.optimizer``.

  ``"adamw"``: ``optax.adamw`` with ``b1``, ``b2``, ``eps`` and decoupled
  weight decay (``update = -lr * (adam + weight_decay * param)``, as
  ``torch.optim.AdamW``). ``"sgd"``: ``optax.sgd`` with optional
  ``momentum`` and ``nesterov``; weight decay is added to the gradient before
  momentum, as ``torch.optim.SGD``. ``"muon"``: ``optax.contrib.muon`` with
  ``muon_learning_rate`` on 2-D parameters, with momentum ``momentum`` (0.95
  when None) and Nesterov always on. AdamW with ``learning_rate``,
  ``adam_b1`` and ``adam_b2`` updates the rest. Both decay weights decoupled,
  scaled by their own learning rate. Gradients are clipped to global norm ``grad_clip_norm`` first
  when it is set.

  Args:
    config_optimizer: the ``optimizer`` ConfigDict of a run config.
    total_steps: optimiser steps of the whole run.
    steps_per_epoch: optimiser steps per epoch.

  Returns:
    ``(tx, schedules)``: the transformation and a dict of learning-rate
    schedules to log, ``learning_rate`` always and ``muon_learning_rate`` for
    Muon.

  Example:
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(
    ...     name="sgd", learning_rate=0.1, momentum=None, nesterov=False,
    ...     weight_decay=0.0, weight_decay_mask="all", schedule="constant",
    ...     warmup_epochs=0.0, final_learning_rate=0.0, grad_clip_norm=1.0))
    >>> tx, schedules = create_optimizer(config, total_steps=100, steps_per_epoch=10)
    >>> float(schedules["learning_rate"](50))
    0.1
  """
  name = config_optimizer.name
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer.name must be one of {OPTIMIZERS}, got {name!r}")
  if config_optimizer.weight_decay < 0:
    raise ValueError(f"optimizer.weight_decay must be >= 0, got {config_optimizer.weight_decay}")
  rate_fields = ["learning_rate"] + (["muon_learning_rate"] if name == "muon" else [])
  for field in rate_fields:
    # `not > 0` also rejects NaN. A negative rate would ascend the loss.
    if not config_optimizer[field] > 0:
      raise ValueError(
          f"optimizer.{field} must be positive, got {config_optimizer[field]}; "
          "for example 1e-3 for AdamW"
      )

  schedule = make_schedule(
      config_optimizer.learning_rate,
      config_optimizer,
      total_steps=total_steps,
      steps_per_epoch=steps_per_epoch,
  )
  schedules = {"learning_rate": schedule}

  if name == "adamw":
    tx = optax.adamw(
        learning_rate=schedule,
        b1=config_optimizer.b1,
        b2=config_optimizer.b2,
        eps=config_optimizer.eps,
        weight_decay=config_optimizer.weight_decay,
        mask=weight_decay_mask(config_optimizer.weight_decay_mask),
    )
  elif name == "sgd":
    tx = optax.chain(
        optax.add_decayed_weights(
            config_optimizer.weight_decay,
            mask=weight_decay_mask(config_optimizer.weight_decay_mask),
        ),
        optax.sgd(
            learning_rate=schedule,
            momentum=config_optimizer.momentum,
            nesterov=config_optimizer.nesterov,
        ),
    )
  else:
    muon_schedule = make_schedule(
        config_optimizer.muon_learning_rate,
        config_optimizer,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
    )
    schedules["muon_learning_rate"] = muon_schedule
    tx = _make_muon(config_optimizer, muon_schedule, schedule)

  clip_norm = config_optimizer.grad_clip_norm
  if clip_norm is not None:
    if clip_norm <= 0:
      raise ValueError(f"optimizer.grad_clip_norm must be positive or None, got {clip_norm}")
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
  return tx, schedules
