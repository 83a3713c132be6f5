"""Checkpoints with Orbax: periodic saves, exact resume, config check, SIGTERM.

Each checkpoint contains the train state and a JSON record of the step and of the
config fields that shape the training trajectory. A run only resumes from a
checkpoint whose record matches its config, and never writes over one that
does not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

logger = logging.getLogger(__name__)

# Config fields that may differ between a checkpoint and the run resuming it,
# because they change how a run is executed, logged or stored but not its
# parameters. num_epochs is not here: it sets the cosine schedule's length.
RUN_CONTROL_FIELDS = (
    "data_dir",
    "max_steps",
    "log_every_steps",
    "eval_every_epochs",
    "eval_batch_size",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "progress_bar",
)


# Fields added to the config after runs had been saved, with the value that
# reproduces the older behaviour. At that value they are left out of the
# fingerprint, so that checkpoints saved before the field existed still resume.
FIELDS_ADDED_LATER = {"alpha_warmup_epochs": 0.0}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      flat.update(_flatten(value, f"{name}."))
    else:
      flat[name] = value
  return flat


def trajectory_config(config: Any) -> dict[str, Any]:
  """Returns the config fields that shape training, flattened and JSON-normalised.

  Every field except ``RUN_CONTROL_FIELDS``, and ``FIELDS_ADDED_LATER`` at
  their old-behaviour value, is kept; nested ConfigDicts become
  dotted names (``optimizer.learning_rate``) and tuples become lists, as they
  would after a JSON round trip.
  """
  as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  flat = _flatten(as_dict)
  trajectory = {
      name: value for name, value in flat.items()
      if name not in RUN_CONTROL_FIELDS
      and not (name in FIELDS_ADDED_LATER and value == FIELDS_ADDED_LATER[name])
  }
  return json.loads(json.dumps(trajectory, sort_keys=True, default=str))


def config_fingerprint(config: Any) -> str:
  """Returns a SHA-256 hex digest of ``trajectory_config(config)``."""
  canonical = json.dumps(trajectory_config(config), sort_keys=True)
  return hashlib.sha256(canonical.encode()).hexdigest()


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
  """Lists ``"name: saved -> current"`` for every field that differs."""
  lines = []
  for name in sorted(set(saved) | set(current)):
    # A later field at its old-behaviour value is not stored; show the value.
    missing = FIELDS_ADDED_LATER.get(name, "<missing>")
    before = saved.get(name, missing)
    after = current.get(name, missing)
    if before != after:
      lines.append(f"{name}: {before!r} -> {after!r}")
  return lines


def abstract_like(tree: Any) -> Any:
  """Returns ``jax.ShapeDtypeStruct``s with the shapes, dtypes and shardings of ``tree``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      tree,
  )


class CheckpointManager:
  """Saves and restores the train state under ``<workdir>/checkpoints``.

  A thin wrapper around ``orbax.checkpoint.CheckpointManager`` that saves
  at multiples of ``save_interval_steps`` (and when forced), keeps the newest
  ``max_to_keep`` checkpoints, and stores the config fingerprint with each.

  Example:
    >>> import tempfile
    >>> import jax.numpy as jnp
    >>> import ml_collections
    >>> config = ml_collections.ConfigDict(dict(seed=0, num_epochs=1))
    >>> state = {"w": jnp.ones((2, 2))}
    >>> manager = CheckpointManager(tempfile.mkdtemp(), config=config)
    >>> manager.check_config()  # raises if the workdir contains another run
    >>> manager.restore(abstract_like(state)) is None  # no checkpoint yet
    True
    >>> manager.save(1, state, force=True)
    True
    >>> restored_state, metadata = manager.restore(abstract_like(state))
    >>> metadata["step"]
    1
    >>> manager.close()
  """

  def __init__(
      self,
      workdir: str,
      *,
      config: Any,
      max_to_keep: int = 3,
      save_interval_steps: int = 1000,
  ):
    if max_to_keep < 1:
      raise ValueError(f"keep_checkpoints must be >= 1, got {max_to_keep}")
    if save_interval_steps < 1:
      raise ValueError(f"checkpoint_every_steps must be >= 1, got {save_interval_steps}")
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.config = trajectory_config(config)
    self.fingerprint = config_fingerprint(config)
    self.save_interval_steps = save_interval_steps
    # The interval is applied by `should_save`, because Orbax's own interval
    # also saves the first step of a run.
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=("state", "metadata"))

  def latest_step(self) -> int | None:
    """Returns the step of the newest checkpoint, or None if there is none."""
    return self._manager.latest_step()

  def read_metadata(self, step: int) -> dict[str, Any]:
    """Reads the JSON record (step, config, fingerprint) saved with ``step``."""
    restored = self._manager.restore(
        step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))
    return dict(restored["metadata"])

  def check_config(self) -> None:
    """Raises if the newest checkpoint was saved by a run with another config.

    Raises:
      ValueError: naming each differing field with its saved and current
        value. Nothing is written, so the checkpoint stays intact.
    """
    step = self.latest_step()
    if step is None:
      return
    metadata = self.read_metadata(step)
    if metadata.get("fingerprint") == self.fingerprint:
      return
    differences = config_differences(metadata.get("config", {}), self.config)
    raise ValueError(
        f"checkpoint at step {step} in {self.directory} was saved with a different "
        f"config, so the run cannot resume from it. Differing fields (saved -> "
        f"current): {'; '.join(differences) or 'none listed, fingerprints differ'}. "
        "Use a new workdir, or restore the saved values to resume."
    )

  def restore(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
    """Restores the newest checkpoint into the shapes and shardings given.

    Args:
      abstract_state: the train state, or ``jax.ShapeDtypeStruct``s of it
        (``abstract_like``), whose structure, dtypes and shardings the
        restored arrays take.

    Returns:
      ``(state, metadata)`` or None when the directory has no checkpoint.

    Raises:
      ValueError: if the checkpoint's config does not match (``check_config``).
    """
    step = self.latest_step()
    if step is None:
      return None
    self.check_config()
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            metadata=ocp.args.JsonRestore(),
        ),
    )
    logger.info("Restored checkpoint of step %d from %s", step, self.directory)
    return restored["state"], dict(restored["metadata"])

  def should_save(self, step: int) -> bool:
    """Returns whether ``step`` is a multiple of the interval and not yet saved."""
    return step % self.save_interval_steps == 0 and step != self.latest_step()

  def save(self, step: int, state: Any, *, force: bool = False) -> bool:
    """Saves ``state`` as step ``step`` if ``should_save(step)`` or ``force``.

    The write finishes in the background; the arrays are copied off the
    devices before this returns, so ``state`` may be donated afterwards.

    Returns:
      Whether a checkpoint was started.
    """
    if step == self.latest_step() or not (force or self.should_save(step)):
      return False
    metadata = {"step": int(step), "fingerprint": self.fingerprint, "config": self.config}
    saved = self._manager.save(
        int(step),
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            metadata=ocp.args.JsonSave(metadata),
        ),
        force=True,
    )
    if saved:
      logger.info("Saving checkpoint of step %d to %s", step, self.directory)
    return saved

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending writes and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


class PreemptionWatcher:
  """Turns SIGTERM or Ctrl-C into a request to save and stop at the next step.

  Use as a context manager around the training loop and call
  ``should_stop(step)`` after each step. On a single process, handlers for
  SIGTERM and SIGINT (Ctrl-C) set a flag, and the previous handlers are
  restored on exit. A second Ctrl-C raises ``KeyboardInterrupt`` at once,
  without a checkpoint. With several processes JAX's preemption service
  (started by ``jax.distributed.initialize``) catches SIGTERM and makes
  every process agree on the same step, so no Python handler is installed
  and Ctrl-C interrupts as usual.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, manager: CheckpointManager | None = None):
    self._manager = manager
    self._requested = threading.Event()
    # The first signal that requested the stop, such as "SIGTERM", or None.
    self.signal_name: str | None = None
    self._previous_handlers: dict[int, Any] = {}
    self._multi_process = jax.process_count() > 1

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if signum == signal.SIGINT:
      if self._requested.is_set():
        raise KeyboardInterrupt
      logger.warning(
          "Received %s; saving a checkpoint at the next step boundary. Press "
          "Ctrl-C again to stop at once without saving", name)
    else:
      logger.warning("Received %s; saving a checkpoint at the next step boundary", name)
    self.signal_name = name
    self._requested.set()

  def __enter__(self) -> "PreemptionWatcher":
    if not self._multi_process and threading.current_thread() is threading.main_thread():
      for signum in self.SIGNALS:
        self._previous_handlers[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}

  def should_stop(self, step: int) -> bool:
    """Returns whether a preemption was requested, as of ``step``."""
    if self._multi_process and self._manager is not None:
      if not self._manager._manager.reached_preemption(step):
        return False
      # JAX's preemption service raises the notice on a SIGTERM to any process.
      self.signal_name = "SIGTERM"
      return True
    return self._requested.is_set()
