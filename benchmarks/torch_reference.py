"""PyTorch eager versions of Weak-SIGReg and SIGReg, written as the papers publish them.

They are the baseline the benchmarks time `sigreg_jax` against. Weak-SIGReg follows
Akbar, 2026, "Weak-SIGReg: Covariance Regularization for Stable
Deep Learning" (arXiv 2603.05924); SIGReg follows Algorithm 1 of
Balestriero and LeCun, 2025, "LeJEPA" (arXiv 2511.08544), which materialises the
complex [batch, slices, knots] tensor. PyTorch is an optional dependency
(`pip install -e .[benchmark]`).
"""

import math

import torch

# LeJEPA Algorithm 1 grid, also used by the Weak-SIGReg paper: 17 knots on [-5, 5].
PAPER_KNOTS = (-5.0, 5.0, 17)


def gaussian_sketch(num_channels: int, num_sketches: int, *, generator=None) -> torch.Tensor:
  """Draw a [channels, sketches] matrix with i.i.d. Normal(0, 1/channels) entries."""
  sketch = torch.randn(num_channels, num_sketches, generator=generator)
  return sketch / math.sqrt(num_channels)


def unit_directions(num_channels: int, num_slices: int, *, generator=None) -> torch.Tensor:
  """Draw a [channels, slices] matrix whose columns are uniform on the unit sphere."""
  directions = torch.randn(num_channels, num_slices, generator=generator)
  return directions / directions.norm(p=2, dim=0, keepdim=True).clamp_min(1e-12)


def weak_sigreg_reference(z: torch.Tensor, num_sketches: int = 64, sketch=None) -> torch.Tensor:
  """Compute Weak-SIGReg, ||cov(z @ S) - I||_F, in PyTorch eager.

  Args:
    z: [batch, channels] features.
    num_sketches: sketch width K. With channels <= K there is no sketch.
    sketch: optional [channels, K] sketch. When None a fresh Gaussian sketch
      with variance 1/channels is drawn, as the reference does on every call.

  Returns:
    A scalar tensor.
  """
  num_samples, num_channels = z.shape

  if num_channels > num_sketches:
    if sketch is None:
      sketch = gaussian_sketch(num_channels, num_sketches).to(z.dtype)
    sketched = z @ sketch
  else:
    sketched = z

  centered = sketched - sketched.mean(dim=0, keepdim=True)
  covariance = centered.T @ centered / (num_samples - 1)

  identity = torch.eye(covariance.shape[0], dtype=z.dtype)
  return torch.linalg.matrix_norm(covariance - identity, ord="fro")


def sigreg_reference(z: torch.Tensor, num_slices: int = 256, directions=None) -> torch.Tensor:
  """Compute SIGReg with the complex empirical characteristic function, in PyTorch eager.

  Projects `z` on random unit directions and evaluates the empirical
  characteristic function exp(1j * t * x) on 17 knots in [-5, 5]. The windowed
  squared distance to exp(-t^2 / 2) is integrated with the trapezoid rule,
  scaled by the batch size and averaged over slices.

  Args:
    z: [batch, channels] features.
    num_slices: number of random directions M.
    directions: optional [channels, M] matrix of unit columns; drawn fresh when None.

  Returns:
    A scalar tensor.
  """
  num_samples, num_channels = z.shape

  if directions is None:
    directions = unit_directions(num_channels, num_slices).to(z.dtype)
  projections = z @ directions

  knots = torch.linspace(*PAPER_KNOTS, dtype=z.dtype)
  window = torch.exp(-0.5 * knots**2)

  # The [batch, slices, knots] complex tensor that the reference materialises.
  phases = projections.unsqueeze(-1) * knots
  characteristic_function = torch.exp(1j * phases).mean(dim=0)

  squared_error = (characteristic_function - window).abs().square() * window
  per_slice = torch.trapezoid(squared_error, knots, dim=-1) * num_samples
  return per_slice.mean()
