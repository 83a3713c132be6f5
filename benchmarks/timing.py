"""Timing helpers shared by the benchmark scripts: thread set-up, interleaved repeats, machine facts.

Every script times its contenders in one process and interleaves their repeats,
so load from other processes on a shared machine hits all of them alike.
"""

import datetime
import os
import platform
import statistics
import time
from typing import Callable

import jax


def configure_torch_threads(num_threads: int) -> None:
  """Pin PyTorch's intra-op and inter-op pools to `num_threads`, if PyTorch is installed."""
  try:
    import torch
  except ImportError:
    return
  torch.set_num_threads(num_threads)
  try:
    torch.set_num_interop_threads(num_threads)
  except RuntimeError:
    # The inter-op pool can only be sized before its first use, so keep the current size.
    pass


def cpu_model() -> str:
  """Return the CPU model name from /proc/cpuinfo, or the platform string elsewhere."""
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine_description() -> dict:
  """Return the facts a benchmark record needs: date, CPU, cores, load, library versions."""
  description = {
      "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
      "cpu": cpu_model(),
      "cores": os.cpu_count(),
      "load_average_1m": os.getloadavg()[0],
      "jax": jax.__version__,
      "jax_backend": jax.default_backend(),
  }
  try:
    import torch

    description["torch"] = torch.__version__
    description["torch_threads"] = torch.get_num_threads()
  except ImportError:
    description["torch"] = None
  return description


def repeat_count(seconds_per_round: float, *, budget_s: float, min_repeats: int,
                 max_repeats: int) -> int:
  """Return how many interleaved rounds fit in `budget_s`, clipped to [min, max]."""
  if seconds_per_round <= 0:
    return max_repeats
  return int(min(max_repeats, max(min_repeats, budget_s // seconds_per_round)))


def time_interleaved(
    contenders: dict[str, Callable[[], object]],
    *,
    budget_s: float = 2.0,
    min_repeats: int = 5,
    max_repeats: int = 50,
    slow_repeats: int = 3,
    warmup: int = 1,
    burst_s: float = 0.0,
    samples_out: dict[str, list[float]] | None = None,
) -> dict[str, float]:
  """Time each contender in interleaved rounds and return its median in seconds.

  Each callable must finish its work before returning (call
  `jax.block_until_ready` inside). The first `warmup` calls, which include
  compilation, are not timed. The order within a round rotates so that no
  contender always runs right after the same neighbour. When one round alone
  takes longer than `budget_s`, only `slow_repeats` rounds run, so that the
  largest sizes (seconds per call) keep the whole run within minutes.

  With `burst_s > 0`, each contender runs back to back within a round, as
  many times as fit in about `burst_s` (counted from one untimed call after
  the warm-up), and its sample is the mean time per call of that burst.
  Back-to-back calls are the steady state of a training loop. On the 2-core
  benchmark machine, a call of 0.2 ms that ran after 0.5 ms of sleep took
  1.7x as long as one that ran right after another call. The likely cause is
  XLA's idle worker threads and cold caches, but that was not measured.

  Args:
    contenders: name -> zero-argument callable.
    budget_s: target wall time of all timed rounds together.
    min_repeats: fewest timed rounds while a round fits in the budget.
    max_repeats: most timed rounds.
    slow_repeats: timed rounds when one round exceeds the budget.
    warmup: untimed calls of each contender before timing.
    burst_s: target seconds of back-to-back calls per sample; 0 times single
      calls.
    samples_out: when given, receives name -> the seconds per call of every
      timed round, in round order, so that callers can pair contenders by
      round.

  Returns:
    name -> median seconds per call.
  """
  names = list(contenders)
  calls_per_sample = {}
  for name in names:
    for _ in range(warmup):
      contenders[name]()
    calls_per_sample[name] = 1
    if burst_s > 0:
      start = time.perf_counter()
      contenders[name]()
      seconds = time.perf_counter() - start
      calls_per_sample[name] = max(1, min(1000, int(burst_s / max(seconds, 1e-9))))

  samples = {name: [] for name in names}
  repeats = max_repeats
  round_index = 0
  while round_index < repeats:
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      calls = calls_per_sample[name]
      start = time.perf_counter()
      for _ in range(calls):
        contenders[name]()
      samples[name].append((time.perf_counter() - start) / calls)

    if round_index == 0:
      # The first timed round, after compilation, sets the number of rounds.
      round_seconds = sum(values[0] * calls_per_sample[name]
                          for name, values in samples.items())
      if round_seconds > budget_s:
        repeats = min(slow_repeats, min_repeats)
      else:
        repeats = repeat_count(round_seconds, budget_s=budget_s, min_repeats=min_repeats,
                               max_repeats=max_repeats)
    round_index += 1

  if samples_out is not None:
    samples_out.update(samples)
  return {name: statistics.median(values) for name, values in samples.items()}


def format_seconds(seconds: float) -> str:
  """Format a duration with a unit that keeps three significant figures."""
  if seconds < 1e-3:
    return f"{seconds * 1e6:.0f} us"
  if seconds < 1.0:
    return f"{seconds * 1e3:.3g} ms"
  return f"{seconds:.3g} s"
