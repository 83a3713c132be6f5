"""The shared body of the experiment entry points: pick a workdir, train, log.

Each entry point (`experiments/vit_cifar100.py`, `experiments/mlp_sgd.py`)
defines its `--config` and `--workdir` flags and calls `run`.
"""

import json
import os

from absl import logging
import ml_collections

from sigreg_jax.training import loop

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "configs")


def default_config_path(experiment: str) -> str:
  """Return the absolute path of `experiments/configs/<experiment>.py`."""
  return os.path.join(CONFIGS_DIR, f"{experiment}.py")


def default_workdir(config: ml_collections.ConfigDict) -> str:
  """Return `workdirs/<experiment>-<variant>-<regularizer>` under the cwd."""
  name = f"{config.experiment}-{config.variant}-{config.regularizer}"
  return os.path.join("workdirs", name)


def run(config: ml_collections.ConfigDict, workdir: str | None) -> dict:
  """Train and evaluate `config` in `workdir` and log the summary.

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

  summary = loop.train_and_evaluate(config, workdir)

  logging.info("Summary of %s: %s", workdir,
               json.dumps(summary, indent=2, sort_keys=True, default=str))
  return summary
