"""The shared body of the experiment entry points: flags, workdir, training, logs.

Each entry point (`experiments/vit_cifar100.py`, `experiments/mlp_sgd.py`)
defines its `--config` and `--workdir` flags with `define_flags` and runs
`absl.app.run(main_function(...))`.
"""

import contextlib
import json
import logging as python_logging
import os

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags
import orbax.checkpoint

from sigreg_jax.training import loop

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "configs")

# The folder of the installed orbax packages, such as .../site-packages/orbax/.
ORBAX_DIR = os.path.dirname(os.path.dirname(orbax.checkpoint.__file__)) + os.sep


class OrbaxInfoFilter(python_logging.Filter):
  """A filter that drops records below WARNING logged from Orbax's source files.

  Orbax logs through `absl.logging`, so its records share the "absl" logger
  with the user's own absl calls, and only the source file path distinguishes
  them.
  """

  def filter(self, record: python_logging.LogRecord) -> bool:
    return (record.levelno >= python_logging.WARNING
            or not record.pathname.startswith(ORBAX_DIR))


@contextlib.contextmanager
def orbax_info_logs_dropped():
  """Add an `OrbaxInfoFilter` to every root log handler until the block exits.

  Orbax logs 30 to 40 INFO lines per `CheckpointManager.save` (measured with
  orbax-checkpoint 0.12.8 on CPU). A filter on the handlers, unlike one on a logger, also applies to
  records that propagate up from the "absl" logger.
  """
  log_filter = OrbaxInfoFilter()
  handlers = list(python_logging.getLogger().handlers)
  for handler in handlers:
    handler.addFilter(log_filter)
  try:
    yield
  finally:
    for handler in handlers:
      handler.removeFilter(log_filter)


def default_config_path(experiment: str) -> str:
  """Return the absolute path of `experiments/configs/<experiment>.py`."""
  return os.path.join(CONFIGS_DIR, f"{experiment}.py")


def define_flags(experiment: str, example_variant: str):
  """Define the `--config` and `--workdir` flags of one experiment's entry point.

  Args:
    experiment: name of the config file `experiments/configs/<experiment>.py`.
    example_variant: a variant of that file, shown in the `--config` help.

  Returns:
    The `(config, workdir)` flag holders.
  """
  config = config_flags.DEFINE_config_file(
      "config", default_config_path(experiment),
      "Experiment config file, optionally with a variant after a colon: "
      f"experiments/configs/{experiment}.py:{example_variant}. Override any "
      "field with --config.<field>=<value>.")
  workdir = flags.DEFINE_string(
      "workdir", None,
      "Directory for the config, metrics, checkpoints and summary; the run "
      f"resumes from it. Default: workdirs/{experiment}-<variant>-<regularizer>.")
  return config, workdir


def main_function(config_flag, workdir_flag):
  """Return the `main(argv)` for `absl.app.run` that trains the flags' config."""
  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run(config_flag.value, workdir_flag.value)

  return main


def default_workdir(config: ml_collections.ConfigDict) -> str:
  """Return `workdirs/<experiment>-<variant>-<regularizer>` under the cwd."""
  name = f"{config.experiment}-{config.variant}-{config.regularizer}"
  return os.path.join("workdirs", name)


def run(config: ml_collections.ConfigDict, workdir: str | None) -> dict:
  """Train and evaluate `config` in `workdir` and log the summary.

  A run stopped early by SIGTERM or Ctrl-C returns normally, after a final
  log line with the step, the signal and the saved checkpoint.

  Orbax's INFO records are dropped while training; see
  `orbax_info_logs_dropped`.

  Args:
    config: an experiment config, as `experiments/configs/*.py` return.
    workdir: where the trainer writes the config, metrics, checkpoints and
      summary, and resumes from; `None` selects `default_workdir(config)`.

  Returns:
    The summary that `train_and_evaluate` returns.
  """
  workdir = workdir or default_workdir(config)
  logging.info("Running %s (%s, regularizer=%s) in %s", config.experiment,
               config.variant, config.regularizer, os.path.abspath(workdir))

  # Orbax's warnings and errors still show.
  with orbax_info_logs_dropped():
    summary = loop.train_and_evaluate(config, workdir)

  logging.info("Summary of %s: %s", workdir,
               json.dumps(summary, indent=2, sort_keys=True, default=str))
  if summary["preempted"]:
    # The process still exits with status 0, so this line and summary.json's
    # "preempted" are what tell an early stop from a finished run.
    logging.warning(
        "Stopped early at step %d after %s and saved the checkpoint %s. Rerun "
        "the same command to resume from step %d.", summary["step"],
        summary["stop_signal"], summary["checkpoint"], summary["step"])
  return summary
