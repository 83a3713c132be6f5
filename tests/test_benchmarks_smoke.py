"""Smoke runs of the benchmark scripts at tiny sizes, so that they keep working.

Each script runs as a subprocess with the command its docstring documents
(`python -m benchmarks.<name>`), which also keeps this test session's 8 CPU
devices out of the measurements. The PyTorch references are checked when
PyTorch is installed and skipped otherwise.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

TORCH_MISSING = "PyTorch is an optional benchmark dependency: pip install -e '.[benchmark]'"


def torch_installed() -> bool:
  try:
    import torch  # noqa: F401
  except ImportError:
    return False
  return True


def run_benchmark(module: str, *args: str, tmp_path: pathlib.Path) -> dict:
  """Run `python -m benchmarks.<module> ... --json FILE` from the repository root; return the JSON."""
  output = tmp_path / f"{module}.json"
  environment = dict(os.environ)
  environment["PYTHONPATH"] = os.pathsep.join(
      [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])])
  completed = subprocess.run(
      [sys.executable, "-m", f"benchmarks.{module}", *args, "--json", str(output)],
      cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False)
  assert completed.returncode == 0, (
      f"benchmarks.{module} exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
  return json.loads(output.read_text())


@pytest.fixture(scope="module")
def torch_reference():
  pytest.importorskip("torch", reason=TORCH_MISSING)
  if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
  from benchmarks import torch_reference

  return torch_reference


def test_regularizer_benchmark_tiny_grid(tmp_path):
  # K = 8 < C sketches; K = 64 >= C takes the path without a sketch.
  results = run_benchmark(
      "regularizers", "--batch-sizes", "64", "--channels", "32", "--counts", "8", "64",
      "--budget", "0.02", tmp_path=tmp_path)

  assert [entry["size"] for entry in results["weak"]] == [[64, 32, 8], [64, 32, 64]]
  assert [entry["size"] for entry in results["sigreg"]] == [[64, 32, 8], [64, 32, 64]]
  sketched, unsketched = results["weak"]
  assert {"jax", "jax_fixed_sketch", "jax_rng", "matmul_floor"} <= set(sketched["medians"])
  assert "jax_rng" not in unsketched["medians"]
  for entry in results["weak"] + results["sigreg"]:
    assert all(seconds > 0 for seconds in entry["medians"].values())
    if torch_installed():
      assert "torch" in entry["medians"]
      assert entry["relative_difference"] <= 1e-3


def test_memory_benchmark_tiny_size(tmp_path):
  results = run_benchmark(
      "memory", "--num-samples", "256", "--num-channels", "16", "--num-slices", "32",
      tmp_path=tmp_path)

  assert results["reference_tensor_bytes"] == 256 * 32 * 17 * 4
  assert results["jax"]["temp_bytes"] > 0
  assert math.isfinite(results["jax"]["value"])
  if torch_installed():
    assert results["relative_difference"] <= 1e-3


@pytest.mark.slow
def test_train_step_benchmark_tiny_model(tmp_path):
  # About a minute on 2 busy cores, most of it compiling three train steps.
  results = run_benchmark(
      "train_step", "--quick", "--width", "16", "--depth", "1", "--batch-size", "8",
      "--light-augment", "--budget", "0.1", "--min-repeats", "1", tmp_path=tmp_path)

  assert set(results["arms"]) == {"none", "weak", "strong"}
  for arm in results["arms"].values():
    assert arm["step_seconds"] > 0
    assert arm["step_flops"]["flops"] > 0
  assert results["arms"]["weak"]["regularizer_flops"]["flops"] > 0
  assert results["augment_images_per_second"] > 0


def test_epoch_benchmark_quick(tmp_path):
  results = run_benchmark("epoch", "--quick", "--regularizers", "none", "weak",
                          tmp_path=tmp_path)

  assert set(results["arms"]) == {"none", "weak"}
  assert results["num_train"] == 1024
  for arm in results["arms"].values():
    assert arm["steps"] == 1024 // 32
    assert arm["images_per_second"] > 0
    assert arm["wall_s"] > 0
    np.testing.assert_allclose(arm["steady_epoch_s"], 1024 / arm["images_per_second"])


def test_torch_weak_collapsed_value(torch_reference):
  import torch

  collapsed = torch.ones(16, 32)
  for num_sketches in (8, 64):
    value = torch_reference.weak_sigreg_reference(collapsed, num_sketches)
    assert value.item() == pytest.approx(math.sqrt(min(32, num_sketches)), rel=1e-6)


def test_torch_weak_matches_float64(torch_reference):
  import torch

  z = np.random.default_rng(0).standard_normal((40, 6))
  value = torch_reference.weak_sigreg_reference(torch.from_numpy(z).float(), num_sketches=8)

  centered = z - z.mean(axis=0)
  covariance = centered.T @ centered / (z.shape[0] - 1)
  expected = np.linalg.norm(covariance - np.eye(6))
  assert value.item() == pytest.approx(expected, rel=1e-5)


def test_torch_sigreg_matches_float64(torch_reference):
  import torch

  rng = np.random.default_rng(1)
  z = rng.standard_normal((50, 3))
  directions = rng.standard_normal((3, 4))
  directions /= np.linalg.norm(directions, axis=0)
  value = torch_reference.sigreg_reference(
      torch.from_numpy(z), num_slices=4, directions=torch.from_numpy(directions))

  # Trapezoid rule on linspace(-5, 5, 17) of |ecf - phi|^2 * phi, times N, mean over slices.
  knots = np.linspace(-5.0, 5.0, 17)
  window = np.exp(-knots**2 / 2)
  projections = z @ directions
  ecf = np.exp(1j * projections[:, :, None] * knots).mean(axis=0)
  integrand = np.abs(ecf - window) ** 2 * window
  spacing = knots[1] - knots[0]
  per_slice = spacing * (integrand.sum(axis=-1) - (integrand[:, 0] + integrand[:, -1]) / 2)
  assert value.item() == pytest.approx(z.shape[0] * per_slice.mean(), rel=1e-10)
