"""The training loop: ``train_and_evaluate(config, workdir)``.

Loads the data, builds the model and optimiser, resumes from the newest
checkpoint in ``workdir``, trains with the regularised loss of Weak-SIGReg
(Akbar, 2026, arXiv 2603.05924), evaluates, and writes metrics, checkpoints
and a summary to ``workdir``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from typing import Any

import jax
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from sigreg_jax import checkpoint as checkpoint_lib
from sigreg_jax import diagnostics
from sigreg_jax import distributed
from sigreg_jax import models
from sigreg_jax import parallel
from sigreg_jax import regularizers
from sigreg_jax.data import pipeline
from sigreg_jax.data import sources
from sigreg_jax.training import loss as loss_lib
from sigreg_jax.training import metrics as metrics_lib
from sigreg_jax.training import optimizers
from sigreg_jax.training import step as step_lib

logger = logging.getLogger(__name__)


def _write_json(path: str, value: Any) -> None:
  if distributed.is_main_process():
    with open(path, "w") as f:
      json.dump(value, f, indent=2, sort_keys=True, default=str)
      f.write("\n")


def _load_dataset(config: Any) -> sources.Dataset:
  return sources.load_dataset(
      config.dataset,
      source=config.data_source,
      data_dir=config.data_dir,
      validation_fraction=config.validation_fraction,
      max_train_examples=config.max_train_examples,
      max_test_examples=config.max_test_examples,
      seed=config.seed,
  )


def _to_host(tree: Any) -> Any:
  """Fetches arrays to numpy, gathering shards from every process when needed."""
  if jax.process_count() > 1:
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.tree.map(np.asarray, tree)


def _check_finite(step: int, metrics: dict[str, jax.Array]) -> float:
  """Returns the step's loss as a float; raises if it is NaN or infinite."""
  loss = float(metrics["loss"])
  if not np.isfinite(loss):
    message = (
        f"training loss is {loss} at step {step}; stopping. Lower the learning "
        "rate, set optimizer.grad_clip_norm, or resume from an earlier checkpoint"
    )
    logger.error(message)
    raise FloatingPointError(message)
  return loss


class _BarSafeHandler(logging.Handler):
  """A log handler that runs another handler with tqdm's bars cleared, then redraws them."""

  def __init__(self, handler: logging.Handler):
    super().__init__(handler.level)
    self.handler = handler

  def handle(self, record: logging.LogRecord) -> bool:
    # The inner handler's filters run here and again in its own handle(), so
    # that records it drops do not make the bar flicker.
    if not self.handler.filter(record):
      return False
    with tqdm.tqdm.external_write_mode():
      return self.handler.handle(record)


@contextlib.contextmanager
def _log_above_progress_bar(progress: tqdm.tqdm):
  """Keeps log lines from breaking ``progress`` while the bar is shown.

  tqdm's ``logging_redirect_tqdm`` replaces only plain console
  ``StreamHandler``s (tqdm 4.70). Under ``absl.app.run`` the root handler is
  absl's ``ABSLHandler``, so each record would print twice and the absl copy
  would still break the bar. Wrapping every root handler instead keeps its
  level, formatter, filters and stream.
  """
  if progress.disable:
    yield
    return
  root = logging.getLogger()
  root.handlers = [_BarSafeHandler(handler) for handler in root.handlers]
  try:
    yield
  finally:
    root.handlers = [
        handler.handler if isinstance(handler, _BarSafeHandler) else handler
        for handler in root.handlers
    ]


class _Evaluator:
  """Evaluates the model on a held-out split in padded, sharded batches."""

  def __init__(self, eval_step, mesh, *, batch_size: int):
    parallel.check_global_batch_size(batch_size, mesh)
    self.eval_step = eval_step
    self.mesh = mesh
    self.batch_size = batch_size
    self.rows = distributed.process_batch_rows(batch_size, mesh)

  def __call__(self, state, images: np.ndarray, labels: np.ndarray, prefix: str) -> dict[str, Any]:
    num_examples = len(labels)
    if num_examples == 0:
      return {}
    totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
    features_per_layer = None

    for start in range(0, num_examples, self.batch_size):
      indices = np.arange(start, start + self.batch_size)
      mask = (indices < num_examples).astype(np.float32)
      indices = np.minimum(indices, num_examples - 1)
      local = indices[self.rows]
      batch = parallel.shard_batch(self.mesh, (images[local], labels[local], mask[self.rows]))
      sums, features = self.eval_step(state, *batch)

      for name, value in sums.items():
        totals[name] += float(value)
      real_rows = int(mask.sum())
      features = [z[:real_rows] for z in _to_host(features)]
      if features_per_layer is None:
        features_per_layer = [[] for _ in features]
      for layer_features, z in zip(features_per_layer, features):
        layer_features.append(z)

    ranks = [
        diagnostics.effective_rank(np.concatenate(layer_features))
        for layer_features in features_per_layer
    ]
    return {
        f"{prefix}_loss": totals["loss_sum"] / totals["count"],
        f"{prefix}_accuracy": totals["correct"] / totals["count"],
        f"{prefix}_participation_ratio": [float(rank["participation_ratio"]) for rank in ranks],
        f"{prefix}_entropy_rank": [float(rank["entropy_rank"]) for rank in ranks],
    }


def _summarise(records: list[dict[str, Any]], *, step: int, preempted: bool) -> dict[str, Any]:
  evals = [record for record in records if record["kind"] == "eval" and "test_accuracy" in record]
  summary: dict[str, Any] = {"step": step, "preempted": preempted, "num_evaluations": len(evals)}
  if evals:
    best = max(evals, key=lambda record: record["test_accuracy"])
    summary["best_test_accuracy"] = best["test_accuracy"]
    summary["best_test_accuracy_step"] = best["step"]
    summary["final_test_accuracy"] = evals[-1]["test_accuracy"]
    summary["final_test_loss"] = evals[-1]["test_loss"]
    summary["final_step_evaluated"] = evals[-1]["step"]
  trains = [record for record in records if record["kind"] == "train"]
  if trains:
    summary["final_train_loss"] = trains[-1]["loss"]
  return summary


def _checkpoint_path(checkpoints: checkpoint_lib.CheckpointManager, step: int) -> str:
  """Returns the directory of the checkpoint of ``step``, named by its step as Orbax does."""
  return os.path.join(checkpoints.directory, str(step))


def _check_config(config: Any) -> None:
  """Rejects invalid run settings before any data is loaded or file written."""
  for name in ("log_every_steps", "eval_every_epochs", "num_epochs"):
    if config[name] < 1:
      raise ValueError(f"config.{name} must be >= 1, got {config[name]}")
  if config.max_steps is not None and config.max_steps < 1:
    raise ValueError(
        f"config.max_steps must be >= 1, got {config.max_steps}; leave it unset "
        "to train for config.num_epochs")
  if config.seed < 0:
    raise ValueError(f"config.seed must be >= 0, got {config.seed}")
  _check_batch_size(config.batch_size)

  if config.regularizer not in loss_lib.REGULARIZERS:
    raise ValueError(
        f"config.regularizer must be one of {loss_lib.REGULARIZERS}, got "
        f"{config.regularizer!r}; for example --config.regularizer=weak")
  try:
    alpha = loss_lib.resolve_alpha(config.regularizer, config.alpha)
  except ValueError as error:
    raise ValueError(f"invalid config.alpha: {error}") from error
  try:
    loss_lib.alpha_schedule(alpha, config.get("alpha_warmup_epochs", 0.0), steps_per_epoch=1)
  except ValueError as error:
    raise ValueError(f"invalid config.alpha_warmup_epochs: {error}") from error

  # Trace the regulariser once on a tiny batch, so that a bad num_sketches,
  # sketch, num_slices or grid fails now, not after the data set has loaded.
  # A run without a regulariser still logs Weak-SIGReg with config.weak.
  if config.regularizer == "none":
    _check_regularizer_config(
        regularizers.weak_sigreg, config.weak, "weak",
        note=" A run with config.regularizer 'none' uses config.weak to log Weak-SIGReg.")
  else:
    regularizer, kwargs = loss_lib.make_regularizer(config)
    _check_regularizer_config(regularizer, kwargs, config.regularizer)


def _check_batch_size(batch_size: Any) -> None:
  """Rejects a global batch that gives the regulariser fewer than 2 rows."""
  if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
    raise ValueError(
        f"config.batch_size must be an integer, got {batch_size!r}. Set a whole "
        "number, for example --config.batch_size=128")
  # Every run evaluates Weak-SIGReg or SIGReg on each layer's features of the
  # whole global batch, however it is split over processes and devices.
  if batch_size < 2:
    raise ValueError(
        f"config.batch_size must be at least 2, got {batch_size}, because the "
        "regulariser (also logged when config.regularizer is 'none') estimates "
        "a covariance or characteristic function across the rows of the global "
        "batch. Set --config.batch_size=2 or more, a multiple of the number of "
        "devices")


def _check_regularizer_config(
    regularizer: Any, settings: Any, name: str, *, note: str = "") -> None:
  """Raises a ValueError naming ``config.<name>`` if ``regularizer`` rejects ``settings``."""
  try:
    jax.eval_shape(
        functools.partial(regularizer, **dict(settings)),
        jax.random.key(0),
        jax.ShapeDtypeStruct((2, 2), np.float32),
    )
  except (TypeError, ValueError) as error:
    raise ValueError(f"invalid config.{name}: {error}{note}") from error


def train_and_evaluate(
    config: Any,
    workdir: str,
    *,
    dataset: sources.Dataset | None = None,
    devices: list[jax.Device] | None = None,
) -> dict[str, Any]:
  """Trains and evaluates the model that ``config`` describes, resuming if possible.

  Writes to ``workdir``: ``config.json``, ``metrics.jsonl`` (one record per
  logging step and per evaluation), ``checkpoints/`` and ``summary.json``.
  A SIGTERM or a first Ctrl-C makes the run save a checkpoint after the
  current step and return with ``summary["preempted"] = True``; calling
  again continues it. A second Ctrl-C stops at once without saving.

  Args:
    config: a run config with the fields of
      ``sigreg_jax.training.config.default_config()``.
    workdir: the run's directory; created if missing.
    dataset: an in-memory dataset to use instead of loading
      ``config.dataset`` (for tests and notebooks).
    devices: the devices of the data mesh; all devices when None.

  Returns:
    The summary: ``step`` reached, ``preempted``, ``checkpoint`` (the
    directory of the checkpoint of ``step``), ``best_test_accuracy`` (and its
    step) over all evaluations, ``final_test_accuracy``, ``final_test_loss``
    and ``final_train_loss``. A preempted run also has ``stop_signal``, the
    name of the signal that stopped it, such as ``"SIGTERM"``.

  Raises:
    ValueError: if the config is invalid, the batch size does not split over
      the devices, or ``workdir`` contains a checkpoint of another config.
    FloatingPointError: if the training loss becomes NaN or infinite.
  """
  # This must precede any JAX computation. It does nothing unless JAX_*
  # variables or a detected launcher request several processes.
  distributed.initialize_distributed()
  _check_config(config)
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  logger.info("Starting run in %s on %d devices", workdir, len(devices or jax.devices()))
  logger.info("Config:\n%s", config)

  mesh = parallel.make_data_mesh(devices)
  batch_size = config.batch_size
  parallel.check_global_batch_size(batch_size, mesh)
  batch_rows = distributed.process_batch_rows(batch_size, mesh)

  # The config check comes before anything is written, so a workdir that
  # belongs to another run is left untouched.
  checkpoints = checkpoint_lib.CheckpointManager(
      workdir,
      config=config,
      max_to_keep=config.keep_checkpoints,
      save_interval_steps=config.checkpoint_every_steps,
  )
  try:
    checkpoints.check_config()
    _write_json(os.path.join(workdir, "config.json"), config.to_dict())
    return _train(config, workdir, mesh, checkpoints, dataset=dataset, batch_rows=batch_rows)
  finally:
    checkpoints.close()


def _train(config, workdir, mesh, checkpoints, *, dataset, batch_rows) -> dict[str, Any]:
  if dataset is None:
    dataset = _load_dataset(config)
  batch_size = config.batch_size
  num_train = len(dataset.train_labels)
  steps_per_epoch = pipeline.steps_per_epoch(num_train, batch_size)
  total_steps = config.num_epochs * steps_per_epoch
  last_step = total_steps if config.max_steps is None else min(total_steps, config.max_steps)
  logger.info("Dataset %s: %d train, %d test examples; %d steps per epoch, %d steps in total",
              dataset.name, num_train, len(dataset.test_labels), steps_per_epoch, total_steps)

  # Model, optimiser and the split train state.
  tx, schedules = optimizers.create_optimizer(
      config.optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  init_key, train_key = jax.random.split(jax.random.key(config.seed))
  params_key, dropout_key = jax.random.split(init_key)
  model = models.create_model(
      config.model,
      num_classes=dataset.num_classes,
      image_shape=dataset.train_images.shape[1:],
      rngs=nnx.Rngs(params=params_key, dropout=dropout_key),
  )
  num_parameters = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  logger.info("Model %s with %d parameters", config.model.name, num_parameters)
  train_state = step_lib.TrainState.create(model, tx)
  state = parallel.replicate(mesh, train_state.state)
  train_key = parallel.replicate(mesh, train_key)

  # Resume.
  writer = metrics_lib.MetricsWriter(workdir)
  restored = checkpoints.restore(checkpoint_lib.abstract_like(state))
  if restored is not None:
    state, metadata = restored
    logger.info("Resuming from step %d", metadata["step"])
  start_step = train_state.replace(state).step
  records = writer.truncate_after(start_step)

  train_step = step_lib.make_train_step(
      train_state, config, num_classes=dataset.num_classes, mean=dataset.mean,
      std=dataset.std, schedules=schedules, mesh=mesh, steps_per_epoch=steps_per_epoch)
  eval_step = step_lib.make_eval_step(
      train_state, num_classes=dataset.num_classes, mean=dataset.mean,
      std=dataset.std, mesh=mesh)
  evaluator = _Evaluator(eval_step, mesh, batch_size=config.get("eval_batch_size") or batch_size)

  def evaluate(step: int) -> None:
    values = evaluator(state, dataset.test_images, dataset.test_labels, "test")
    values.update(evaluator(
        state, dataset.validation_images, dataset.validation_labels, "validation"))
    if not values:
      logger.warning("Skipping evaluation at step %d: the data set has no test examples", step)
      return
    records.append(writer.write(step, "eval", values))
    logger.info("Step %d: %s", step, ", ".join(
        f"{name} {value:.4f}" for name, value in values.items() if isinstance(value, float)))

  step = start_step
  eval_steps = [record["step"] for record in records if record["kind"] == "eval"]
  last_evaluated = max(eval_steps, default=None)
  preempted = False
  permutation_epoch, permutation = None, None
  pending = None  # (step, metrics) of the newest step whose loss is not yet checked.
  interval_start, interval_steps = time.perf_counter(), 0

  progress = tqdm.tqdm(
      total=last_step, initial=start_step, unit="step", desc="train",
      disable=not (config.progress_bar and distributed.is_main_process()))
  watcher = checkpoint_lib.PreemptionWatcher(checkpoints)
  with jax.set_mesh(mesh), watcher, progress, _log_above_progress_bar(progress):
    while step < last_step:
      # Data order depends only on (seed, epoch), so a resumed run gets the
      # same batches.
      epoch, index_in_epoch = divmod(step, steps_per_epoch)
      if epoch != permutation_epoch:
        permutation = pipeline.epoch_permutation(config.seed, epoch, num_train)
        permutation_epoch = epoch
      indices = pipeline.batch_indices(permutation, index_in_epoch, batch_size)[batch_rows]
      images, labels = parallel.shard_batch(
          mesh, (dataset.train_images[indices], dataset.train_labels[indices]))

      state, step_metrics = train_step(state, images, labels, train_key)
      step += 1
      interval_steps += 1
      progress.update(1)

      # Check the previous step's loss while this one runs on the device.
      if pending is not None:
        _check_finite(*pending)
      pending = (step, step_metrics)

      if step % config.log_every_steps == 0 or step == last_step:
        loss = _check_finite(*pending)
        elapsed = time.perf_counter() - interval_start
        values = jax.tree.map(np.asarray, step_metrics)
        # The first interval of a run (or of a resume) includes compilation.
        values["images_per_second"] = interval_steps * batch_size / elapsed
        values["epoch"] = step / steps_per_epoch
        records.append(writer.write(step, "train", values))
        progress.set_postfix(loss=f"{loss:.4f}", accuracy=f"{float(values['accuracy']):.3f}",
                             images_per_second=f"{values['images_per_second']:.0f}")
        interval_start, interval_steps = time.perf_counter(), 0

      end_of_epoch = step % steps_per_epoch == 0
      if end_of_epoch and (step // steps_per_epoch) % config.eval_every_epochs == 0:
        _check_finite(*pending)
        evaluate(step)
        last_evaluated = step

      if checkpoints.should_save(step):
        _check_finite(*pending)
        checkpoints.save(step, state, force=True)

      if watcher.should_stop(step):
        _check_finite(*pending)
        logger.warning(
            "Stopping early at step %d of %d after %s; saving the checkpoint %s",
            step, last_step, watcher.signal_name, _checkpoint_path(checkpoints, step))
        if checkpoints.latest_step() != step:
          checkpoints.save(step, state, force=True)
        preempted = True
        break

    if pending is not None:
      _check_finite(*pending)
    if not preempted:
      if last_evaluated != step:
        evaluate(step)
      if checkpoints.latest_step() != step:
        checkpoints.save(step, state, force=True)

  summary = _summarise(records, step=step, preempted=preempted)
  summary["num_parameters"] = int(num_parameters)
  summary["checkpoint"] = _checkpoint_path(checkpoints, step)
  if preempted:
    summary["stop_signal"] = watcher.signal_name
  _write_json(os.path.join(workdir, "summary.json"), summary)
  logger.info("Run in %s stopped at step %d: %s", workdir, step, summary)
  return summary
