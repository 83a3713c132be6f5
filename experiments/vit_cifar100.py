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

from experiments import launch

_CONFIG, _WORKDIR = launch.define_flags("vit_cifar100", example_variant="muon")
flags.adopt_module_key_flags(launch)  # So that --help lists --config and --workdir.

if __name__ == "__main__":
  app.run(launch.main_function(_CONFIG, _WORKDIR))
