r"""Plot accuracy, loss, per-layer regulariser and effective rank of runs.

Reads `metrics.jsonl` and `summary.json` that
`sigreg_jax.training.loop.train_and_evaluate` writes in each workdir and
overlays the runs, one colour per run, so a baseline and a regularised run
compare at a glance:

    python -m experiments.plot workdirs/vit_cifar100-collapse-none \
        workdirs/vit_cifar100-collapse-weak --output workdirs/vit.png
"""

import dataclasses
import json
import os
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
from matplotlib import ticker  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_OUTPUT = flags.DEFINE_string("output", "workdirs/runs.png",
                              "Path of the PNG file to write; missing folders "
                              "are created.")
_LABELS = flags.DEFINE_list(
    "labels", None,
    "Legend label per workdir, comma separated, in the order of the workdirs. "
    "Default: the workdir's base name.")
_TITLE = flags.DEFINE_string("title", None, "Figure title.")

# Effective-rank measures of the evaluation records, one value per layer,
# and the line style that draws each.
_RANK_STYLES = {
    "test_entropy_rank": "-",
    "test_participation_ratio": "--",
}


@dataclasses.dataclass
class Run:
  """The metrics of one workdir, split into training and evaluation records."""
  label: str
  train: list[dict]
  evaluation: list[dict]
  summary: dict
  steps_per_epoch: float | None


def load_run(workdir: str, label: str | None = None) -> Run:
  """Read `metrics.jsonl` and, when present, `summary.json` of one workdir.

  Lines that are not valid JSON (a run killed mid-write) are skipped with a
  warning.

  Raises:
    FileNotFoundError: if `workdir` has no `metrics.jsonl`.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"No metrics.jsonl in {workdir!r}; pass the --workdir of a run of "
        "experiments.vit_cifar100 or experiments.mlp_sgd.")

  train, evaluation = [], []
  with open(path) as metrics_file:
    for line_number, line in enumerate(metrics_file, start=1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as error:
        logging.warning("Skipping invalid line %d of %s: %s", line_number,
                        path, error)
        continue
      (evaluation if record.get("kind") == "eval" else train).append(record)

  summary = {}
  summary_path = os.path.join(workdir, "summary.json")
  if os.path.exists(summary_path):
    with open(summary_path) as summary_file:
      summary = json.load(summary_file)

  # Training records carry both step and epoch, which fixes the conversion.
  steps_per_epoch = next(
      (r["step"] / r["epoch"] for r in train if r.get("epoch")), None)

  label = label or os.path.basename(os.path.normpath(workdir))
  return Run(label, train, evaluation, summary, steps_per_epoch)


def _series(run: Run, records: Sequence[dict], key: str):
  """Return (epochs or steps, values) of `key` over `records`."""
  points = [(r["step"], r[key]) for r in records
            if isinstance(r.get(key), (int, float))]
  steps = np.array([p[0] for p in points], dtype=float)
  if run.steps_per_epoch:
    steps = steps / run.steps_per_epoch
  return steps, np.array([p[1] for p in points], dtype=float)


def _layer_series(run: Run, records: Sequence[dict], key: str):
  """Return (epochs or steps, values [num_records, num_layers]) of `key`."""
  points = [(r["step"], r[key]) for r in records
            if isinstance(r.get(key), list)]
  if not points:
    return np.zeros(0), np.zeros((0, 0))
  steps = np.array([p[0] for p in points], dtype=float)
  if run.steps_per_epoch:
    steps = steps / run.steps_per_epoch
  return steps, np.array([p[1] for p in points], dtype=float)


def plot_runs(runs: Sequence[Run], output: str, title: str | None = None):
  """Draw six panels comparing `runs` and save them as a PNG at `output`."""
  figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  x_label = "epoch" if all(run.steps_per_epoch for run in runs) else "step"

  for index, run in enumerate(runs):
    color = colors[index % len(colors)]
    _plot_accuracy_and_loss(axes[0, 0], axes[0, 1], run, color)
    _plot_regularizer(axes[0, 2], axes[1, 2], run, color)
    _plot_effective_rank(axes[1, 0], axes[1, 1], run, color)

  panels = [
      ("accuracy (%): test (points), train batches (dotted)", x_label),
      ("loss: test (points), train cross-entropy (dotted)", x_label),
      ("regulariser, mean over layers (regularised runs)", x_label),
      ("effective rank of test features, mean over layers\n"
       "solid: entropy rank, dashed: participation ratio", x_label),
      ("effective rank per layer, last evaluation\n"
       "solid: entropy rank, dashed: participation ratio", "layer"),
      ("regulariser per layer, last logged step (regularised runs)", "layer"),
  ]
  for axis, (axis_title, axis_label) in zip(axes.flat, panels):
    axis.set_title(axis_title, fontsize=10)
    axis.set_xlabel(axis_label)
    axis.grid(alpha=0.3)
    if axis.has_data():
      axis.legend(fontsize=7)
    else:
      axis.text(0.5, 0.5, "no data in these runs",
                ha="center", va="center", transform=axis.transAxes,
                color="gray")
  # A log scale only where the regulariser spans more than a decade, since
  # otherwise its tick labels read worse than linear ones.
  low, high = axes[0, 2].dataLim.intervaly
  if axes[0, 2].has_data() and low > 0 and high / low > 10:
    axes[0, 2].set_yscale("log")
  for axis in (axes[1, 1], axes[1, 2]):
    axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))

  if title:
    figure.suptitle(title)
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  figure.savefig(output, dpi=72)
  plt.close(figure)


def _plot_accuracy_and_loss(accuracy_axis, loss_axis, run: Run, color: str):
  steps, values = _series(run, run.evaluation, "test_accuracy")
  accuracy_axis.plot(steps, 100 * values, color=color, marker="o",
                     markersize=3, label=run.label)
  steps, values = _series(run, run.train, "accuracy")
  accuracy_axis.plot(steps, 100 * values, color=color, linestyle=":",
                     alpha=0.7)

  steps, values = _series(run, run.evaluation, "test_loss")
  loss_axis.plot(steps, values, color=color, marker="o", markersize=3,
                 label=run.label)
  steps, values = _series(run, run.train, "cross_entropy")
  loss_axis.plot(steps, values, color=color, linestyle=":", alpha=0.7)


def _plot_regularizer(curve_axis, layer_axis, run: Run, color: str):
  steps, values = _series(run, run.train, "regularizer")
  if len(steps):
    curve_axis.plot(steps, values, color=color, label=run.label)

  _, per_layer = _layer_series(run, run.train, "regularizer_per_layer")
  if len(per_layer):
    layer_axis.plot(np.arange(per_layer.shape[1]), per_layer[-1], color=color,
                    marker="o", label=run.label)


def _plot_effective_rank(curve_axis, layer_axis, run: Run, color: str):
  for key, linestyle in _RANK_STYLES.items():
    steps, per_layer = _layer_series(run, run.evaluation, key)
    if not len(steps):
      continue
    # One legend entry per run; the panel titles name the line styles.
    label = run.label if linestyle == "-" else None
    curve_axis.plot(steps, per_layer.mean(axis=1), color=color,
                    linestyle=linestyle, marker="o", markersize=3,
                    label=label)
    layer_axis.plot(np.arange(per_layer.shape[1]), per_layer[-1],
                    color=color, linestyle=linestyle, marker="o", label=label)


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError(
        "Missing workdirs: python -m experiments.plot WORKDIR [WORKDIR ...] "
        "--output FILE.png")
  output = _OUTPUT.value
  if os.path.isdir(output):
    raise app.UsageError(
        f"--output={output} is a folder; give a file name, for example "
        f"--output={os.path.join(output, 'runs.png')}.")
  if not output.lower().endswith(".png"):
    raise app.UsageError(
        f"--output={output} must end in .png, for example --output={output}.png.")
  labels = _LABELS.value or [None] * len(workdirs)
  if len(labels) != len(workdirs):
    raise app.UsageError(
        f"--labels has {len(labels)} entries for {len(workdirs)} workdirs; "
        "give one label per workdir.")

  runs = [load_run(w, label) for w, label in zip(workdirs, labels)]
  plot_runs(runs, output, _TITLE.value)
  logging.info("Wrote %s", output)


if __name__ == "__main__":
  app.run(main)
