"""Measure the peak memory of SIGReg's forward and backward pass against the PyTorch reference.

The reference (LeJEPA Algorithm 1, Balestriero and LeCun, 2025, arXiv
2511.08544) materialises the projections times the knots as a
[batch, slices, knots] tensor, and its complex exponential. `sigreg_jax.sigreg`
keeps a few [batch, slices] arrays instead. This script records, at one size
(N = 8192, M = 1024, 17 knots on [-5, 5] by default):
- XLA's compiled memory analysis of the jitted value and gradient: temporary
  buffers, arguments and outputs;
- the growth of peak resident memory (ru_maxrss) of a fresh subprocess while
  it runs one forward and backward pass, for sigreg_jax and for the PyTorch
  reference, on the same features and directions;
- both values, which must agree.

Run `python -m benchmarks.memory` (about a minute on 2 cores) or
`python -m benchmarks.memory --quick` for a small size.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile

import numpy as np

FULL_SIZE = dict(num_samples=8192, num_channels=1024, num_slices=1024)
QUICK_SIZE = dict(num_samples=1024, num_channels=256, num_slices=256)

# Knots of the reference grid, linspace(-5, 5, 17).
REFERENCE_KNOTS = 17

MEGABYTE = 1e6
VALUE_RTOL = 1e-3


def read_status_bytes(field: str) -> int:
  """Return a memory field of /proc/self/status (VmRSS, VmHWM) in bytes."""
  with open("/proc/self/status") as status:
    for line in status:
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  raise RuntimeError(f"/proc/self/status has no {field} field; this script needs Linux")


def reset_peak_rss() -> int:
  """Reset the peak resident set size (VmHWM) to the current one and return it in bytes.

  Writing 5 to /proc/self/clear_refs resets VmHWM on Linux 4.0 and later, so
  peaks reached while importing or compiling do not hide the pass measured next.
  """
  with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
  return read_status_bytes("VmRSS")


def peak_rss_bytes() -> int:
  """Return the peak resident set size since the last `reset_peak_rss`, in bytes."""
  return read_status_bytes("VmHWM")


def run_jax(inputs_path: str) -> dict:
  """Compile and run sigreg_jax's value and gradient once; return values and memory."""
  import jax
  import sigreg_jax

  arrays = np.load(inputs_path)
  z = jax.device_put(arrays["z"])
  key = jax.random.key(int(arrays["seed"]))
  num_slices = arrays["directions"].shape[1]

  def loss(z, key):
    return sigreg_jax.sigreg(key, z, num_slices=num_slices, **sigreg_jax.PAPER_GRID)

  compiled = jax.jit(jax.value_and_grad(loss)).lower(z, key).compile()
  analysis = compiled.memory_analysis()

  baseline = reset_peak_rss()
  value, gradient = compiled(z, key)
  jax.block_until_ready(gradient)
  peak = peak_rss_bytes()

  np.save(gradient_path(inputs_path, "jax"), np.asarray(gradient))
  return dict(
      value=float(value),
      peak_rss_growth=peak - baseline,
      temp_bytes=analysis.temp_size_in_bytes,
      argument_bytes=analysis.argument_size_in_bytes,
      output_bytes=analysis.output_size_in_bytes,
  )


def run_torch(inputs_path: str) -> dict:
  """Run the PyTorch reference's forward and backward once; return values and memory."""
  import torch

  from benchmarks import torch_reference

  torch.set_num_threads(os.cpu_count() or 1)
  arrays = np.load(inputs_path)
  z = torch.from_numpy(arrays["z"]).requires_grad_(True)
  directions = torch.from_numpy(arrays["directions"])
  num_slices = directions.shape[1]

  # Load the kernels on a tiny input so that the measured growth is the tensors'.
  small = torch.randn(8, z.shape[1], requires_grad=True)
  torch_reference.sigreg_reference(small, num_slices, directions).backward()

  baseline = reset_peak_rss()
  value = torch_reference.sigreg_reference(z, num_slices, directions)
  value.backward()
  peak = peak_rss_bytes()

  np.save(gradient_path(inputs_path, "torch"), z.grad.numpy())
  return dict(
      value=float(value.detach()),
      peak_rss_growth=peak - baseline,
  )


def gradient_path(inputs_path: str, side: str) -> str:
  """Return where the `side` subprocess saves its gradient, next to the inputs."""
  return os.path.join(os.path.dirname(inputs_path), f"gradient_{side}.npy")


def write_inputs(path: str, num_samples: int, num_channels: int, num_slices: int,
                 seed: int = 0) -> None:
  """Write features and the directions sigreg_jax draws from `seed` to an .npz file."""
  import jax
  from sigreg_jax import regularizers

  rng = np.random.default_rng(seed)
  scales = rng.uniform(0.5, 2.0, size=num_channels) / np.sqrt(num_channels)
  z = (rng.standard_normal((num_samples, num_channels)) * scales).astype(np.float32)
  directions = np.asarray(regularizers.unit_directions(jax.random.key(seed), num_channels,
                                                       num_slices))
  np.savez(path, z=z, directions=directions, seed=seed)


def run_child(side: str, inputs_path: str) -> dict:
  """Run `side` ("jax" or "torch") in a fresh Python process and return its JSON report."""
  completed = subprocess.run(
      [sys.executable, "-m", "benchmarks.memory", "--child", side, "--inputs", inputs_path],
      capture_output=True, text=True, check=False)
  if completed.returncode != 0:
    raise RuntimeError(
        f"the {side} memory measurement failed with exit code {completed.returncode}:\n"
        f"{completed.stderr[-4000:]}")
  return json.loads(completed.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
  try:
    import torch  # noqa: F401
  except ImportError:
    return False
  return True


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="measure N=1024, C=256, M=256 instead of N=8192, C=1024, M=1024")
  parser.add_argument("--num-samples", type=int, default=None, help="batch size N")
  parser.add_argument("--num-channels", type=int, default=None, help="feature width C")
  parser.add_argument("--num-slices", type=int, default=None, help="number of slices M")
  parser.add_argument("--no-torch", action="store_true",
                      help="skip the PyTorch reference even when torch is installed")
  parser.add_argument("--json", default=None, help="also write the results to this JSON file")
  parser.add_argument("--child", choices=("jax", "torch"), default=None, help=argparse.SUPPRESS)
  parser.add_argument("--inputs", default=None, help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)

  if args.child is not None:
    report = run_jax(args.inputs) if args.child == "jax" else run_torch(args.inputs)
    print(json.dumps(report))
    return report

  logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
  size = dict(QUICK_SIZE if args.quick else FULL_SIZE)
  for name in size:
    if getattr(args, name) is not None:
      size[name] = getattr(args, name)

  # The reference's real [N, M, T] float32 tensor. Its complex exponential is twice that.
  reference_tensor_bytes = size["num_samples"] * size["num_slices"] * REFERENCE_KNOTS * 4
  results = dict(size=size, reference_tensor_bytes=reference_tensor_bytes)

  with tempfile.TemporaryDirectory() as directory:
    inputs_path = os.path.join(directory, "inputs.npz")
    write_inputs(inputs_path, **size)

    results["jax"] = run_child("jax", inputs_path)
    if not args.no_torch and torch_available():
      results["torch"] = run_child("torch", inputs_path)
      jax_gradient = np.load(gradient_path(inputs_path, "jax")).astype(np.float64)
      torch_gradient = np.load(gradient_path(inputs_path, "torch")).astype(np.float64)
      results["gradient_relative_difference"] = float(
          np.linalg.norm(jax_gradient - torch_gradient) / np.linalg.norm(torch_gradient))
    else:
      logging.info("PyTorch is not installed or --no-torch is set: measuring sigreg_jax only")

  jax_result = results["jax"]
  xla_total = jax_result["temp_bytes"] + jax_result["argument_bytes"] + jax_result["output_bytes"]
  lines = [
      f"size: N={size['num_samples']} C={size['num_channels']} M={size['num_slices']}, "
      f"{REFERENCE_KNOTS} knots on [-5, 5]",
      f"reference [N, M, T] float32 tensor: {reference_tensor_bytes / MEGABYTE:.0f} MB "
      f"(a quarter: {reference_tensor_bytes / 4 / MEGABYTE:.0f} MB)",
      f"sigreg_jax XLA temporaries: {jax_result['temp_bytes'] / MEGABYTE:.1f} MB "
      f"({jax_result['temp_bytes'] / reference_tensor_bytes:.3f} of the tensor)",
      f"sigreg_jax XLA temporaries + arguments + outputs: {xla_total / MEGABYTE:.1f} MB "
      f"({xla_total / reference_tensor_bytes:.3f} of the tensor)",
      f"sigreg_jax peak RSS growth: {jax_result['peak_rss_growth'] / MEGABYTE:.1f} MB",
  ]
  if "torch" in results:
    torch_result = results["torch"]
    relative = abs(jax_result["value"] - torch_result["value"]) / abs(torch_result["value"])
    results["relative_difference"] = relative
    lines += [
        f"torch reference peak RSS growth: {torch_result['peak_rss_growth'] / MEGABYTE:.1f} MB",
        f"values: sigreg_jax {jax_result['value']:.6g}, torch {torch_result['value']:.6g} "
        f"(relative difference {relative:.1e})",
        f"gradients: relative L2 difference {results['gradient_relative_difference']:.1e}",
    ]
    if not relative <= VALUE_RTOL:
      raise AssertionError(
          f"sigreg_jax gives {jax_result['value']:.6g} but the torch reference gives "
          f"{torch_result['value']:.6g} on the same directions; the implementations disagree")
  print("\n".join(lines))

  if args.json:
    with open(args.json, "w") as output:
      json.dump(results, output, indent=1)
  return results


if __name__ == "__main__":
  main()
