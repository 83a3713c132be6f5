r"""Train the Weak-SIGReg paper's deep vanilla MLP on CIFAR-100 with plain SGD.

Akbar, 2026, "Weak-SIGReg: Covariance Regularization for Stable Deep
Learning", arXiv 2603.05924, reports the best test accuracy over 400 epochs.
With crop and flip only it is 26.77 (baseline), 35.99 (strong, SIGReg) and
42.17 (weak, Weak-SIGReg). With MixUp/CutMix added it is 38.08 / 38.70 /
38.40 (variant "mix" in `experiments/configs/mlp_sgd.py`).

    python -m experiments.mlp_sgd --config.regularizer=weak
    python -m experiments.mlp_sgd \
        --config=experiments/configs/mlp_sgd.py:mix --config.regularizer=weak

Every config field can be set with --config.<field>=<value>. The fields and
their defaults are in `default_config()` of `sigreg_jax/training/config.py`,
and `experiments/configs/mlp_sgd.py` sets this experiment's values and
variants. For example:

    python -m experiments.mlp_sgd --config.batch_size=256 \
        --config.regularizer=weak --config.optimizer.learning_rate=0.05

Offline, on the CIFAR-10 image-folder archive:

    python -m experiments.mlp_sgd --config.dataset=cifar10 \
        --config.data_source=image_folder \
        --config.data_dir=/path/to/cifar10-jpeg.tar.gz
"""

from absl import app
from absl import flags

from experiments import launch

_CONFIG, _WORKDIR = launch.define_flags("mlp_sgd", example_variant="mix")
flags.adopt_module_key_flags(launch)  # So that --help lists --config and --workdir.

if __name__ == "__main__":
  app.run(launch.main_function(_CONFIG, _WORKDIR))
