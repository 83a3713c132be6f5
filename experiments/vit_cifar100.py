r"""Train the Weak-SIGReg paper's ViT on CIFAR-100, collapse setting by default.

Akbar, 2026, "Weak-SIGReg: Covariance Regularization for Stable Deep
Learning", arXiv 2603.05924, reports the best test accuracy over 400 epochs
of 20.73 (baseline), 70.20 (strong, SIGReg) and 72.02 (weak, Weak-SIGReg) for
this setting with AdamW. Variants (tuned ViT, Muon) and their numbers are in
`experiments/configs/vit_cifar100.py`.

    python -m experiments.vit_cifar100 --config.regularizer=weak
    python -m experiments.vit_cifar100 --config.regularizer=none \
        --workdir=workdirs/vit-baseline
    python -m experiments.vit_cifar100 \
        --config=experiments/configs/vit_cifar100.py:muon_nomix \
        --config.regularizer=weak

Every config field can be set with --config.<field>=<value>. The fields and
their defaults are in `default_config()` of `sigreg_jax/training/config.py`,
and `experiments/configs/vit_cifar100.py` sets this experiment's values and
variants. For example:

    python -m experiments.vit_cifar100 --config.batch_size=256 \
        --config.regularizer=weak --config.optimizer.learning_rate=5e-4

Offline, on the CIFAR-10 image-folder archive:

    python -m experiments.vit_cifar100 --config.dataset=cifar10 \
        --config.data_source=image_folder \
        --config.data_dir=/path/to/cifar10-jpeg.tar.gz
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import launch

_CONFIG = config_flags.DEFINE_config_file(
    "config", launch.default_config_path("vit_cifar100"),
    "Experiment config file, optionally with a variant after a colon: "
    "experiments/configs/vit_cifar100.py:muon. Override any field with "
    "--config.<field>=<value>.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Directory for the config, metrics, checkpoints and summary; the run "
    "resumes from it. Default: workdirs/vit_cifar100-<variant>-<regularizer>.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  launch.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
