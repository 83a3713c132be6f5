"""Training: the regularised loss, optimisers, jitted steps and the run loop."""

from sigreg_jax.training.config import default_config
from sigreg_jax.training.loop import train_and_evaluate
from sigreg_jax.training.loss import soft_cross_entropy
from sigreg_jax.training.loss import total_loss
from sigreg_jax.training.optimizers import create_optimizer
from sigreg_jax.training.optimizers import make_schedule
from sigreg_jax.training.step import TrainState
from sigreg_jax.training.step import make_eval_step
from sigreg_jax.training.step import make_train_step

__all__ = (
    "TrainState",
    "create_optimizer",
    "default_config",
    "make_eval_step",
    "make_schedule",
    "make_train_step",
    "soft_cross_entropy",
    "total_loss",
    "train_and_evaluate",
)
