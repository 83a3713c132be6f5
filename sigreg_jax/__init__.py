"""Weak-SIGReg and SIGReg representation regularisers for JAX and Flax NNX."""

from sigreg_jax.diagnostics import effective_rank
from sigreg_jax.diagnostics import entropy_effective_rank
from sigreg_jax.diagnostics import participation_ratio
from sigreg_jax.regularizers import PAPER_GRID
from sigreg_jax.regularizers import gaussian_sketch
from sigreg_jax.regularizers import mean_over_layers
from sigreg_jax.regularizers import orthogonal_sketch
from sigreg_jax.regularizers import sigreg
from sigreg_jax.regularizers import sigreg_per_slice
from sigreg_jax.regularizers import step_key
from sigreg_jax.regularizers import unit_directions
from sigreg_jax.regularizers import weak_sigreg

__version__ = "0.1.0"

__all__ = (
    "PAPER_GRID",
    "effective_rank",
    "entropy_effective_rank",
    "gaussian_sketch",
    "mean_over_layers",
    "orthogonal_sketch",
    "participation_ratio",
    "sigreg",
    "sigreg_per_slice",
    "step_key",
    "unit_directions",
    "weak_sigreg",
)
