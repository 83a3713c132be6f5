r"""Plot accuracy, loss, per-layer regulariser and effective rank of runs.

Reads the metrics JSONL that `sigreg_jax.training.loop.train_and_evaluate`
writes in each workdir and overlays the runs, one colour per run, so a
baseline and a regularised run compare at a glance:

    python -m experiments.plot workdirs/vit_cifar100-collapse-none \
        workdirs/vit_cifar100-collapse-weak --output docs/vit.png
"""

import collections
import dataclasses
import glob
import json
import os
import re
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

_OUTPUT = flags.DEFINE_string("output", "runs.png",
                              "Path of the PNG file to write.")
_LABELS = flags.DEFINE_list(
    "labels", None,
    "Legend label per workdir, comma separated, in the order of the workdirs. "
    "Default: the workdir's base name.")
_TITLE = flags.DEFINE_string("title", None, "Figure title.")

# A metric name is "<split>/<name>" or "<split>/<name>/layer_<index>", with
# "." or "_" accepted in place of "/" so that flat names also match.
_SEPARATOR = r"[/._]"
_LAYER = re.compile(_SEPARATOR + r"(?:layer" + _SEPARATOR + r"?)?(\d+)$")


@dataclasses.dataclass
class Run:
  """The metrics of one workdir, split into training and evaluation records."""
  label: str
  train: list[dict]
  evaluation: list[dict]
  summary: dict


def _is_evaluation(record: dict) -> bool:
  return any(key.startswith(("eval", "test")) for key in record)


def find_metrics_file(workdir: str) -> str:
  """Return the path of the metrics JSONL file in `workdir`.

  Raises:
    FileNotFoundError: if `workdir` holds no `*.jsonl` file.
  """
  preferred = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(preferred):
    return preferred
  candidates = sorted(glob.glob(os.path.join(workdir, "*.jsonl")))
  if not candidates:
    raise FileNotFoundError(
        f"No metrics file (*.jsonl) found in workdir {workdir!r}; pass the "
        "--workdir of a run of experiments.vit_cifar100 or experiments.mlp_sgd.")
  return candidates[0]


def load_run(workdir: str, label: str | None = None) -> Run:
  """Read the metrics and summary of one workdir.

  Lines that are not valid JSON (a run killed mid-write) are skipped with a
  warning.
  """
  path = find_metrics_file(workdir)
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
      (evaluation if _is_evaluation(record) else train).append(record)

  summary = {}
  summary_path = os.path.join(workdir, "summary.json")
  if os.path.exists(summary_path):
    with open(summary_path) as summary_file:
      summary = json.load(summary_file)

  label = label or os.path.basename(os.path.normpath(workdir))
  return Run(label=label, train=train, evaluation=evaluation, summary=summary)


def _series(records: Sequence[dict], pattern: str) -> tuple[list, list]:
  """Return (steps, values) of the first key matching `pattern`."""
  regex = re.compile(pattern)
  for key in _keys(records):
    if regex.search(key):
      points = [(r["step"], r[key]) for r in records
                if key in r and r.get(key) is not None and "step" in r]
      return [p[0] for p in points], [p[1] for p in points]
  return [], []


def _keys(records: Sequence[dict]) -> list[str]:
  seen = {}
  for record in records:
    for key in record:
      seen.setdefault(key, None)
  return list(seen)


def _layer_series(records: Sequence[dict],
                  pattern: str) -> dict[int, tuple[list, list]]:
  """Return {layer index: (steps, values)} for keys matching `pattern`."""
  regex = re.compile(pattern)
  layers = {}
  for key in _keys(records):
    layer_match = _LAYER.search(key)
    if layer_match is None or not regex.search(key[:layer_match.start()]):
      continue
    points = [(r["step"], r[key]) for r in records
              if r.get(key) is not None and "step" in r]
    layers[int(layer_match.group(1))] = ([p[0] for p in points],
                                         [p[1] for p in points])
  return dict(sorted(layers.items()))


def _mean_over_layers(layers: dict[int, tuple[list, list]]) -> tuple[list, list]:
  totals = collections.defaultdict(list)
  for steps, values in layers.values():
    for step, value in zip(steps, values):
      totals[step].append(value)
  steps = sorted(totals)
  return steps, [sum(totals[s]) / len(totals[s]) for s in steps]


_ACCURACY_TEST = r"^(eval|test)" + _SEPARATOR + r"accuracy$"
_ACCURACY_TRAIN = r"^train" + _SEPARATOR + r"accuracy$"
_LOSS_TEST = r"^(eval|test)" + _SEPARATOR + r"(loss|cross_entropy)$"
_LOSS_TRAIN = r"^train" + _SEPARATOR + r"cross_entropy$"
_REGULARIZER = r"^train" + _SEPARATOR + r"regularizer"
_EFFECTIVE_RANK = (r"^(eval|test)" + _SEPARATOR +
                   r"(effective_rank|participation_ratio)")


def plot_runs(runs: Sequence[Run], output: str, title: str | None = None):
  """Draw the six panels for `runs` and save them as a PNG at `output`."""
  figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

  for index, run in enumerate(runs):
    color = colors[index % len(colors)]

    steps, values = _series(run.evaluation, _ACCURACY_TEST)
    axes[0, 0].plot(steps, [100 * v for v in values], color=color,
                    marker="o", markersize=3, label=f"{run.label} test")
    steps, values = _series(run.train, _ACCURACY_TRAIN)
    axes[0, 0].plot(steps, [100 * v for v in values], color=color,
                    linestyle=":", alpha=0.7, label=f"{run.label} train")

    steps, values = _series(run.train, _LOSS_TRAIN)
    axes[0, 1].plot(steps, values, color=color, linestyle=":", alpha=0.7,
                    label=f"{run.label} train cross-entropy")
    steps, values = _series(run.evaluation, _LOSS_TEST)
    axes[0, 1].plot(steps, values, color=color, marker="o", markersize=3,
                    label=f"{run.label} test loss")

    regularizer = _layer_series(run.train, _REGULARIZER)
    steps, values = _mean_over_layers(regularizer)
    axes[0, 2].plot(steps, values, color=color, label=run.label)
    _plot_last_per_layer(axes[1, 2], regularizer, color, run.label)

    effective_rank = _layer_series(run.evaluation, _EFFECTIVE_RANK)
    steps, values = _mean_over_layers(effective_rank)
    axes[1, 0].plot(steps, values, color=color, marker="o", markersize=3,
                    label=run.label)
    _plot_last_per_layer(axes[1, 1], effective_rank, color, run.label)

  titles = [
      ("accuracy (%)", "step"),
      ("loss", "step"),
      ("regulariser, mean over layers (train)", "step"),
      ("effective rank, mean over layers (test)", "step"),
      ("effective rank per layer, last evaluation", "layer"),
      ("regulariser per layer, last logged step", "layer"),
  ]
  for axis, (axis_title, xlabel) in zip(axes.flat, titles):
    axis.set_title(axis_title)
    axis.set_xlabel(xlabel)
    axis.grid(alpha=0.3)
    if axis.has_data():
      axis.legend(fontsize=7)
  if axes[0, 2].has_data():
    axes[0, 2].set_yscale("log")

  if title:
    figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(output, dpi=80)
  plt.close(figure)


def _plot_last_per_layer(axis, layers, color, label):
  last = {layer: values[-1] for layer, (_, values) in layers.items() if values}
  if last:
    axis.plot(list(last), list(last.values()), color=color, marker="o",
              label=label)


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError(
        "Missing workdirs: python -m experiments.plot WORKDIR [WORKDIR ...] "
        "--output FILE.png")
  labels = _LABELS.value or [None] * len(workdirs)
  if len(labels) != len(workdirs):
    raise app.UsageError(
        f"--labels has {len(labels)} entries for {len(workdirs)} workdirs; "
        "give one label per workdir.")

  runs = [load_run(w, label) for w, label in zip(workdirs, labels)]
  plot_runs(runs, _OUTPUT.value, _TITLE.value)
  logging.info("Wrote %s", _OUTPUT.value)


if __name__ == "__main__":
  app.run(main)
