"""Time Weak-SIGReg and SIGReg, forward plus backward, against PyTorch eager references.

For each batch size N, channel count C and sketch or slice count K, one process
times, in interleaved rounds:
- `sigreg_jax.weak_sigreg` and `sigreg_jax.sigreg` (jitted value and gradient
  with respect to z, random draw included),
- the PyTorch eager references of `benchmarks.torch_reference` (value and
  gradient, random draw included),
- the matrix products Weak-SIGReg cannot avoid: the sketch product z @ S and
  its transpose, and the covariance product y^T y and its transpose,
- the random draws alone (the sketch or the directions) on both sides.

Before timing a size it checks that both sides return the same value on the
same sketch or directions. SIGReg uses the Weak-SIGReg paper's grid
(`linspace(-5, 5, 17)`, trapezoid rule) on both sides.

Run `python -m benchmarks.regularizers` (a few minutes on 2 cores) or add
`--quick` for a small grid in seconds.
"""

import argparse
import functools
import itertools
import json
import logging
import math
import os

# PyTorch's OpenMP threads spin for a while after each parallel region by
# default, which takes the cores from the JAX call timed next in the same
# round. Passive waiting makes them sleep at once. OpenMP reads this when
# torch loads, so it is set before the first import of torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import timing
import sigreg_jax
from sigreg_jax import regularizers

FULL_BATCH_SIZES = (128, 1024, 8192)
FULL_CHANNELS = (256, 1024)
FULL_COUNTS = (64, 256, 1024)

QUICK_BATCH_SIZES = (128, 1024)
QUICK_CHANNELS = (256,)
QUICK_COUNTS = (64, 256)

# Relative tolerance of the value check. Both sides compute in float32.
VALUE_RTOL = 1e-3


def import_torch():
  """Return the torch module, or None when PyTorch is not installed."""
  try:
    import torch
  except ImportError:
    return None
  return torch


def weak_matmul_floor(z: jax.Array, sketch: jax.Array | None) -> jax.Array:
  """Run the matrix products of Weak-SIGReg's forward and backward, and nothing else.

  Forward: y = z @ S and the covariance product y^T y. Backward: the
  covariance cotangent back to y, then to z through S^T. Without a sketch
  (C <= K) only the covariance products remain.
  """
  sketched = z if sketch is None else z @ sketch
  covariance = sketched.T @ sketched
  sketched_cotangent = sketched @ covariance
  if sketch is None:
    return sketched_cotangent
  return sketched_cotangent @ sketch.T


def sketch_matmul_floor(z: jax.Array, sketch: jax.Array) -> jax.Array:
  """Run only the sketch product z @ S and its backward product with S^T."""
  return (z @ sketch) @ sketch.T


def jax_value_and_grad(regularizer, **kwargs):
  """Return a jitted (key, z) -> (value, dvalue/dz) for a sigreg_jax regulariser."""
  def loss(z, key):
    return regularizer(key, z, **kwargs)

  return jax.jit(jax.value_and_grad(loss))


def torch_value_and_grad(torch, reference, z, num_threads, **kwargs):
  """Return a zero-argument callable running a torch reference forward and backward."""
  def run():
    torch.set_num_threads(num_threads)
    leaf = z.detach().requires_grad_(True)
    value = reference(leaf, **kwargs)
    value.backward()
    return value.detach(), leaf.grad

  return run


def blocking(function, *args):
  """Return a zero-argument callable that calls a jitted function and waits for it."""
  def run():
    return jax.block_until_ready(function(*args))

  return run


def check_same_value(name, jax_value, torch_value):
  """Log both values, raise if they differ by more than VALUE_RTOL, and return the difference."""
  jax_value = float(jax_value)
  torch_value = float(torch_value)
  relative = abs(jax_value - torch_value) / max(abs(torch_value), 1e-12)
  logging.info("%s: jax %.6g, torch %.6g, relative difference %.1e",
               name, jax_value, torch_value, relative)
  if not relative <= VALUE_RTOL:
    raise AssertionError(
        f"{name}: sigreg_jax gives {jax_value:.6g} but the torch reference gives "
        f"{torch_value:.6g} on the same sketch (relative difference {relative:.1e} > "
        f"{VALUE_RTOL}); the implementations disagree")
  return relative


def features(num_samples: int, num_channels: int, seed: int = 0) -> np.ndarray:
  """Return float32 Gaussian features whose channel scales lie in [0.5, 2] / sqrt(C)."""
  rng = np.random.default_rng(seed)
  scales = rng.uniform(0.5, 2.0, size=num_channels) / math.sqrt(num_channels)
  return (rng.standard_normal((num_samples, num_channels)) * scales).astype(np.float32)


def bench_weak(torch, z_numpy, num_sketches, *, threads, budget_s, min_repeats, burst_s=0.0):
  """Time Weak-SIGReg at one size and return the medians and the value check's difference."""
  num_samples, num_channels = z_numpy.shape
  key = jax.random.key(0)
  z = jnp.asarray(z_numpy)
  has_sketch = num_channels > num_sketches
  sketch = regularizers.gaussian_sketch(key, num_channels, num_sketches) if has_sketch else None

  weak = jax_value_and_grad(sigreg_jax.weak_sigreg, num_sketches=num_sketches)
  floor = jax.jit(weak_matmul_floor)
  draw = jax.jit(functools.partial(regularizers.gaussian_sketch, num_channels=num_channels,
                                   num_sketches=num_sketches))
  contenders = {
      "jax": blocking(weak, z, key),
      "matmul_floor": blocking(floor, z, sketch),
  }
  if has_sketch:
    # weak_sigreg on features of width K skips the sketch, so this times the
    # library's own code on a given sketch: the sketch product, then the rest.
    fixed_sketch = jax.jit(jax.value_and_grad(
        lambda z, key, sketch: sigreg_jax.weak_sigreg(key, z @ sketch, num_sketches=num_sketches)))
    contenders["jax_fixed_sketch"] = blocking(fixed_sketch, z, key, sketch)
    contenders["sketch_matmul"] = blocking(jax.jit(sketch_matmul_floor), z, sketch)
    contenders["jax_rng"] = blocking(draw, key)
    # JAX's default draw of the same shape. The library draws with classic
    # Threefry instead, and this row shows what that saves.
    default_draw = jax.jit(lambda key: jax.random.normal(key, (num_channels, num_sketches)))
    contenders["jax_rng_default"] = blocking(default_draw, key)

  torch_contenders = {}
  relative_difference = None
  if torch is not None:
    from benchmarks import torch_reference

    z_torch = torch.from_numpy(z_numpy)
    sketch_torch = None if sketch is None else torch.from_numpy(np.array(sketch))
    torch_value = torch_reference.weak_sigreg_reference(z_torch, num_sketches, sketch_torch)
    jax_value, _ = weak(z, key)
    relative_difference = check_same_value(
        f"weak N={num_samples} C={num_channels} K={num_sketches}", jax_value, torch_value)

    for num_threads in sorted({threads, 1}):
      torch_contenders[f"torch_{num_threads}_threads"] = torch_value_and_grad(
          torch, torch_reference.weak_sigreg_reference, z_torch, num_threads, num_sketches=num_sketches)
    if has_sketch:
      torch_contenders["torch_rng"] = functools.partial(
          torch_reference.gaussian_sketch, num_channels, num_sketches)

  medians = time_jax_then_torch(contenders, torch_contenders, budget_s=budget_s,
                                min_repeats=min_repeats, burst_s=burst_s)
  return dict(medians=medians, relative_difference=relative_difference)


def bench_sigreg(torch, z_numpy, num_slices, *, threads, budget_s, min_repeats, burst_s=0.0):
  """Time SIGReg on the Weak-SIGReg paper's grid at one size.

  Returns the medians and the relative difference of the value check.
  """
  num_samples, num_channels = z_numpy.shape
  key = jax.random.key(0)
  z = jnp.asarray(z_numpy)

  strong = jax_value_and_grad(sigreg_jax.sigreg, num_slices=num_slices, **sigreg_jax.PAPER_GRID)
  draw = jax.jit(functools.partial(regularizers.unit_directions, num_channels=num_channels,
                                   num_slices=num_slices))
  contenders = {
      "jax": blocking(strong, z, key),
      "jax_rng": blocking(draw, key),
  }

  torch_contenders = {}
  relative_difference = None
  if torch is not None:
    from benchmarks import torch_reference

    z_torch = torch.from_numpy(z_numpy)
    directions = torch.from_numpy(np.array(draw(key)))
    torch_value = torch_reference.sigreg_reference(z_torch, num_slices, directions)
    jax_value, _ = strong(z, key)
    relative_difference = check_same_value(
        f"sigreg N={num_samples} C={num_channels} M={num_slices}", jax_value, torch_value)

    for num_threads in sorted({threads, 1}):
      torch_contenders[f"torch_{num_threads}_threads"] = torch_value_and_grad(
          torch, torch_reference.sigreg_reference, z_torch, num_threads, num_slices=num_slices)
    torch_contenders["torch_rng"] = functools.partial(
        torch_reference.unit_directions, num_channels, num_slices)

  medians = time_jax_then_torch(contenders, torch_contenders, budget_s=budget_s,
                                min_repeats=min_repeats, burst_s=burst_s)
  return dict(medians=medians, relative_difference=relative_difference)


def time_jax_then_torch(contenders, torch_contenders, *, budget_s, min_repeats, burst_s):
  """Time the JAX contenders among themselves, then `jax` against the torch ones.

  The JAX-only rounds give the ratios to the bare products. A PyTorch call
  run just before a JAX call slowed that JAX call, and more so the calls
  with more kernels and larger temporaries: at N = 8192, C = K = 256 the
  library took 1.4x to 1.5x the bare products in mixed rounds and 1.07x in
  JAX-only rounds. So the PyTorch comparison gets rounds of its own, with
  `jax` timed again beside the references as `jax_beside_torch`.

  Returns:
    name -> median seconds, with "torch" set to the faster thread setting.
  """
  medians = timing.time_interleaved(contenders, budget_s=budget_s, min_repeats=min_repeats,
                                    max_repeats=200, burst_s=burst_s)
  if torch_contenders:
    mixed = {"jax_beside_torch": contenders["jax"], **torch_contenders}
    medians.update(timing.time_interleaved(mixed, budget_s=budget_s, min_repeats=min_repeats,
                                           max_repeats=200, burst_s=burst_s))
    add_torch_best(medians)
  return medians


def add_torch_best(medians):
  """Set medians["torch"] to the faster of the torch thread settings.

  On a shared machine, PyTorch's OpenMP pool with one thread per core can
  stall when another process holds a core, so the faster of 1 thread and
  `--threads` threads is the reference the ratios use.
  """
  torch_times = [seconds for name, seconds in medians.items()
                 if name.startswith("torch_") and name.endswith("_threads")]
  if torch_times:
    medians["torch"] = min(torch_times)


def weak_row(size, result):
  """Format one Markdown table row of the Weak-SIGReg results."""
  medians = result["medians"]
  jax_time = medians["jax"]
  # Without a sketch (C <= K) there is no random draw, so the two timings coincide.
  fixed_sketch_time = medians.get("jax_fixed_sketch", jax_time)
  cells = [
      *map(str, size),
      timing.format_seconds(jax_time),
      timing.format_seconds(fixed_sketch_time),
      timing.format_seconds(medians["jax_rng"]) if "jax_rng" in medians else "-",
      (timing.format_seconds(medians["jax_rng_default"])
       if "jax_rng_default" in medians else "-"),
      timing.format_seconds(medians["matmul_floor"]),
      f"{fixed_sketch_time / medians['matmul_floor']:.2f}",
      f"{jax_time / medians['matmul_floor']:.2f}",
      timing.format_seconds(medians["sketch_matmul"]) if "sketch_matmul" in medians else "-",
  ]
  if "torch" in medians:
    cells += [
        timing.format_seconds(medians["jax_beside_torch"]),
        timing.format_seconds(medians["torch"]),
        timing.format_seconds(medians["torch_rng"]) if "torch_rng" in medians else "-",
        f"{medians['torch'] / medians['jax_beside_torch']:.2f}",
    ]
  return "| " + " | ".join(cells) + " |"


def sigreg_row(size, result):
  """Format one Markdown table row of the SIGReg results."""
  medians = result["medians"]
  jax_time = medians["jax"]
  cells = [
      *map(str, size),
      timing.format_seconds(jax_time),
      timing.format_seconds(medians["jax_rng"]),
  ]
  if "torch" in medians:
    cells += [
        timing.format_seconds(medians["jax_beside_torch"]),
        timing.format_seconds(medians["torch"]),
        timing.format_seconds(medians["torch_rng"]),
        f"{medians['torch'] / medians['jax_beside_torch']:.1f}",
    ]
  return "| " + " | ".join(cells) + " |"


WEAK_HEADER = (
    "| N | C | K | jax | jax, given sketch | jax RNG | JAX default RNG | matmul floor "
    "| given sketch / floor | jax / floor | sketch matmul | jax beside torch | torch | torch RNG "
    "| torch / jax |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
SIGREG_HEADER = (
    "| N | C | M | jax | jax RNG | jax beside torch | torch | torch RNG | torch / jax |\n"
    "|---|---|---|---|---|---|---|---|---|")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="time a small grid (N in 128, 1024; C = 256; K in 64, 256) "
                           "with fewer repeats")
  parser.add_argument("--threads", type=int, default=2,
                      help="PyTorch intra-op threads (default 2, the cores of the "
                           "benchmark machine); the references also run with 1 thread "
                           "and the faster setting is compared. XLA uses its default "
                           "pool of one thread per core")
  parser.add_argument("--budget", type=float, default=None,
                      help="target seconds of timed rounds per size and regulariser "
                           "(default 2, or 0.3 with --quick)")
  parser.add_argument("--burst", type=float, default=0.005,
                      help="seconds of back-to-back calls that make one timed sample "
                           "(default 0.005; 0 times single calls, each right after "
                           "another contender's)")
  parser.add_argument("--no-torch", action="store_true",
                      help="skip the PyTorch references even when torch is installed")
  parser.add_argument("--only", choices=("weak", "sigreg"), default=None,
                      help="time one regulariser only")
  parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                      help="override the batch sizes N of the grid")
  parser.add_argument("--channels", type=int, nargs="+", default=None,
                      help="override the channel counts C of the grid")
  parser.add_argument("--counts", type=int, nargs="+", default=None,
                      help="override the sketch and slice counts K and M of the grid")
  parser.add_argument("--json", default=None, help="also write all medians to this JSON file")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)

  torch = None if args.no_torch else import_torch()
  if torch is None:
    logging.info("PyTorch is not installed or --no-torch is set: timing sigreg_jax only")
  timing.configure_torch_threads(args.threads)

  if args.quick:
    grid = (QUICK_BATCH_SIZES, QUICK_CHANNELS, QUICK_COUNTS)
    budget_s, min_repeats = args.budget or 0.3, 3
  else:
    grid = (FULL_BATCH_SIZES, FULL_CHANNELS, FULL_COUNTS)
    budget_s, min_repeats = args.budget or 2.0, 5

  grid = tuple(override or default for override, default in
               zip((args.batch_sizes, args.channels, args.counts), grid))

  machine = timing.machine_description()
  logging.info("machine: %s", machine)

  results = {"machine": machine, "weak": [], "sigreg": []}
  weak_rows, sigreg_rows = [], []
  for num_samples, num_channels, count in itertools.product(*grid):
    z_numpy = features(num_samples, num_channels)
    size = (num_samples, num_channels, count)

    if args.only in (None, "weak"):
      result = bench_weak(torch, z_numpy, count, threads=args.threads, budget_s=budget_s,
                          min_repeats=min_repeats, burst_s=args.burst)
      results["weak"].append(dict(size=size, **result))
      weak_rows.append(weak_row(size, result))
      logging.info(weak_rows[-1])

    if args.only in (None, "sigreg"):
      result = bench_sigreg(torch, z_numpy, count, threads=args.threads, budget_s=budget_s,
                            min_repeats=min_repeats, burst_s=args.burst)
      results["sigreg"].append(dict(size=size, **result))
      sigreg_rows.append(sigreg_row(size, result))
      logging.info(sigreg_rows[-1])

  if weak_rows:
    print("\nWeak-SIGReg, forward + backward (median)\n" + WEAK_HEADER)
    print("\n".join(weak_rows))
  if sigreg_rows:
    print("\nSIGReg on the paper grid, forward + backward (median)\n" + SIGREG_HEADER)
    print("\n".join(sigreg_rows))

  if args.json:
    with open(args.json, "w") as output:
      json.dump(results, output, indent=1)
  return results


if __name__ == "__main__":
  main()
