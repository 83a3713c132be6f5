"""Multi-process training on one machine, over JAX's distributed runtime on CPU.

Each test launches ``tests/multihost_worker.py`` as separate processes that
talk over loopback (gloo CPU collectives, a coordinator on a free port of
127.0.0.1), each process with two virtual CPU devices. Every child runs under
a timeout and is killed in a ``finally`` block, so a hang fails the test
instead of blocking it. The module took 1.5 to 3 minutes on two CPU cores
shared with other work, most of it in start-up and compilation.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("multihost_worker.py")
REPOSITORY = WORKER.parent.parent
RUN_TIMEOUT = 240  # seconds for one training launch of all its processes
HEARTBEAT_TIMEOUT = 5  # seconds
# Per-step values computed by two processes differ from one process only by
# the order of float32 reductions across devices.
RTOL, ATOL = 1e-5, 1e-6


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def worker_environment(compilation_cache: Path | None) -> dict[str, str]:
  """The test's environment without settings that would steer the children.

  Runs that share ``compilation_cache`` reuse each other's compiled steps.
  """
  environ = {
      name: value for name, value in os.environ.items()
      if not name.startswith(("JAX_", "SIGREG_", "XLA_", "SLURM_", "OMPI_", "TPU_"))
  }
  environ["JAX_PLATFORMS"] = "cpu"
  environ["PYTHONUNBUFFERED"] = "1"
  if compilation_cache is not None:
    environ["JAX_COMPILATION_CACHE_DIR"] = str(compilation_cache)
  environ["PYTHONPATH"] = os.pathsep.join(
      [str(REPOSITORY)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
  return environ


class Launch:
  """Processes of one run; ``stop`` kills whichever are still alive."""

  def __init__(self, log_dir: Path, name: str, compilation_cache: Path | None = None):
    self.log_dir = log_dir
    self.name = name
    self.compilation_cache = compilation_cache
    self.processes: list[subprocess.Popen] = []
    self.logs: list[Path] = []

  def start(self, *, workdir: Path, num_processes: int, local_devices: int,
            process_ids: list[int] | None = None, through_environment: bool = False,
            **flags) -> None:
    """Starts the processes ``process_ids`` (all when None) of one run.

    The start-up settings go to the worker as flags, or as ``JAX_*``
    environment variables when ``through_environment`` is set.
    """
    address = f"127.0.0.1:{free_port()}"
    for process_id in range(num_processes) if process_ids is None else process_ids:
      settings = {"num_processes": num_processes, "process_id": process_id,
                  "coordinator_address": address}
      environ = worker_environment(self.compilation_cache)
      argv = [sys.executable, str(WORKER), f"--workdir={workdir}",
              f"--local_devices={local_devices}", f"--heartbeat_timeout={HEARTBEAT_TIMEOUT}"]
      if through_environment:
        environ.update({f"JAX_{name.upper()}": str(value) for name, value in settings.items()})
      else:
        argv += [f"--{name}={value}" for name, value in settings.items()]
      argv += [f"--{name}={value}" for name, value in flags.items() if value is not True]
      argv += [f"--{name}" for name, value in flags.items() if value is True]

      log = self.log_dir / f"{self.name}-process{process_id}.log"
      with open(log, "w") as output:
        self.processes.append(subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, env=environ, cwd=REPOSITORY))
      self.logs.append(log)

  def wait(self, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    return [process.wait(max(deadline - time.monotonic(), 0.1)) for process in self.processes]

  def output(self, index: int) -> str:
    """The log of the ``index``-th process started."""
    return self.logs[index].read_text(errors="replace")

  def describe(self) -> str:
    """The last lines of every process's log, for assertion messages."""
    parts = []
    for index, log in enumerate(self.logs):
      lines = self.output(index).splitlines()
      parts.append(f"--- {log.name} (last 30 lines) ---\n" + "\n".join(lines[-30:]))
    return "\n".join(parts)

  def stop(self) -> None:
    for process in self.processes:
      if process.poll() is None:
        process.kill()
    for process in self.processes:
      with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


@contextlib.contextmanager
def launch(log_dir: Path, name: str, compilation_cache: Path | None = None):
  run = Launch(log_dir, name, compilation_cache)
  try:
    yield run
  finally:
    run.stop()


def run_to_completion(log_dir: Path, name: str, compilation_cache: Path, **kwargs) -> Launch:
  with launch(log_dir, name, compilation_cache) as run:
    run.start(**kwargs)
    try:
      returncodes = run.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
      pytest.fail(f"{name} did not finish within {RUN_TIMEOUT} s\n{run.describe()}")
    assert returncodes == [0] * len(returncodes), f"{name} failed\n{run.describe()}"
    return run


def read_metrics(workdir: Path) -> list[dict]:
  with open(workdir / "metrics.jsonl") as records:
    return [json.loads(line) for line in records if line.strip()]


def read_checkpoint(workdir: Path, step: int) -> dict[str, np.ndarray]:
  """The train state saved at ``step``, as numpy arrays keyed by tree path."""
  path = workdir / "checkpoints" / str(step) / "state"
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  return {jax.tree_util.keystr(key): np.asarray(value)
          for key, value in jax.tree_util.tree_flatten_with_path(state)[0]}


def train_records(workdir: Path) -> dict[int, dict]:
  records = [record for record in read_metrics(workdir) if record["kind"] == "train"]
  steps = [record["step"] for record in records]
  assert len(steps) == len(set(steps)), f"metrics.jsonl repeats steps {steps}"
  return {record["step"]: record for record in records}


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory) -> Path:
  return tmp_path_factory.mktemp("jax_compilation_cache")


@pytest.fixture(scope="module")
def reference_and_two_process_runs(tmp_path_factory, compilation_cache):
  """One process with four devices trains 4 steps; two processes with two
  devices each train 2 steps, then resume from that checkpoint to step 4."""
  root = tmp_path_factory.mktemp("multihost")
  reference, two_process = root / "one_process", root / "two_processes"

  started = time.monotonic()
  with (launch(root, "one_process", compilation_cache) as single,
        launch(root, "two_processes_first", compilation_cache) as first):
    single.start(workdir=reference, num_processes=1, local_devices=4, max_steps=4)
    first.start(workdir=two_process, num_processes=2, local_devices=2, max_steps=2)
    for run in (single, first):
      try:
        returncodes = run.wait(RUN_TIMEOUT)
      except subprocess.TimeoutExpired:
        pytest.fail(f"{run.name} did not finish within {RUN_TIMEOUT} s\n{run.describe()}")
      assert returncodes == [0] * len(returncodes), f"{run.name} failed\n{run.describe()}"
  resumed = run_to_completion(
      root, "two_processes_resumed", compilation_cache, workdir=two_process, num_processes=2,
      local_devices=2, max_steps=4)
  print(f"reference and two-process runs took {time.monotonic() - started:.0f} s")
  return reference, two_process, resumed


def test_two_processes_connect_all_devices(reference_and_two_process_runs):
  _, _, resumed = reference_and_two_process_runs
  for process_id in range(2):
    output = resumed.output(process_id)
    assert f"connected: process {process_id} of 2, 4 devices" in output, resumed.describe()
    assert "assemble the global batch" in output, resumed.describe()


def test_two_processes_resume_checkpoint(reference_and_two_process_runs):
  _, two_process, resumed = reference_and_two_process_runs
  for process_id in range(2):
    assert "Resuming from step 2" in resumed.output(process_id), resumed.describe()
  assert sorted(int(path.name) for path in (two_process / "checkpoints").iterdir()
                if path.name.isdigit()) == [2, 4]


def test_two_processes_match_one_process_per_step(reference_and_two_process_runs):
  reference, two_process, _ = reference_and_two_process_runs
  expected, actual = train_records(reference), train_records(two_process)
  assert sorted(actual) == sorted(expected) == [1, 2, 3, 4]
  for step in expected:
    for name in ("loss", "cross_entropy", "regularizer", "regularizer_per_layer",
                 "accuracy", "grad_norm"):
      np.testing.assert_allclose(
          actual[step][name], expected[step][name], rtol=RTOL, atol=ATOL,
          err_msg=f"{name} at step {step}")


def test_two_processes_match_one_process_parameters(reference_and_two_process_runs):
  reference, two_process, _ = reference_and_two_process_runs
  for step in (2, 4):
    expected, actual = read_checkpoint(reference, step), read_checkpoint(two_process, step)
    assert actual.keys() == expected.keys()
    for name in expected:
      np.testing.assert_allclose(actual[name], expected[name], rtol=RTOL, atol=ATOL,
                                 err_msg=f"{name} at step {step}")


def test_process_zero_writes_summary_once(reference_and_two_process_runs):
  reference, two_process, _ = reference_and_two_process_runs
  summary = json.loads((two_process / "summary.json").read_text())
  expected = json.loads((reference / "summary.json").read_text())
  assert summary["step"] == 4
  np.testing.assert_allclose(summary["final_test_loss"], expected["final_test_loss"],
                             rtol=RTOL, atol=ATOL)
  evaluations = [record for record in read_metrics(two_process) if record["kind"] == "eval"]
  assert [record["step"] for record in evaluations] == [2, 4]


def wait_for_training(run: Launch, workdir: Path, num_records: int = 3) -> None:
  """Waits until process 0 has logged ``num_records`` steps; it logs every step."""
  deadline = time.monotonic() + RUN_TIMEOUT
  while not (workdir / "metrics.jsonl").exists() or len(read_metrics(workdir)) < num_records:
    assert time.monotonic() < deadline, f"training did not start\n{run.describe()}"
    assert all(p.poll() is None for p in run.processes), f"a process exited\n{run.describe()}"
    time.sleep(0.5)


def test_sigterm_saves_on_all_processes(tmp_path, compilation_cache):
  workdir = tmp_path / "run"
  with launch(tmp_path, "preempted", compilation_cache) as run:
    run.start(workdir=workdir, num_processes=2, local_devices=2, max_steps=100_000,
              checkpoint_every_steps=100_000, through_environment=True)
    wait_for_training(run, workdir)

    # JAX's preemption service makes both processes stop at the same step.
    run.processes[1].send_signal(signal.SIGTERM)
    try:
      returncodes = run.wait(60)
    except subprocess.TimeoutExpired:
      pytest.fail(f"processes still running 60 s after SIGTERM\n{run.describe()}")

  assert returncodes == [0, 0], run.describe()
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["preempted"] is True
  saved_steps = [int(path.name) for path in (workdir / "checkpoints").iterdir()
                 if path.name.isdigit()]
  assert saved_steps == [summary["step"]]
  for index in range(2):
    assert f"connected: process {index} of 2, 4 devices" in run.output(index), run.describe()
    assert f"finished: process {index} at step {summary['step']}" in run.output(index)


def test_killed_process_stops_peer(tmp_path, compilation_cache):
  workdir = tmp_path / "run"
  with launch(tmp_path, "killed", compilation_cache) as run:
    run.start(workdir=workdir, num_processes=2, local_devices=2, max_steps=100_000,
              checkpoint_every_steps=100_000)

    wait_for_training(run, workdir)

    run.processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    bound = HEARTBEAT_TIMEOUT + 15
    try:
      returncode = run.processes[0].wait(bound)
    except subprocess.TimeoutExpired:
      pytest.fail(f"process 0 still running {bound} s after its peer was killed\n"
                  f"{run.describe()}")
    elapsed = time.monotonic() - killed_at

  assert returncode != 0, run.describe()
  assert elapsed < bound
  assert "heartbeat" in run.output(0) or "unhealthy" in run.output(0), run.describe()


def test_missing_peer_times_out(tmp_path):
  initialization_timeout = 3
  with launch(tmp_path, "alone") as run:
    # Process 1 of 2 starts, and process 0, which runs the coordinator, never does.
    run.start(workdir=tmp_path / "run", num_processes=2, local_devices=2, process_ids=[1],
              connect_only=True, initialization_timeout=initialization_timeout)
    started = time.monotonic()
    bound = initialization_timeout + 30
    try:
      returncode = run.processes[0].wait(bound)
    except subprocess.TimeoutExpired:
      pytest.fail(f"a process without peers still ran after {bound} s\n{run.describe()}")
    elapsed = time.monotonic() - started

  output = run.output(0)
  assert returncode != 0, run.describe()
  assert elapsed < bound
  assert "Timed out after" in output, run.describe()
  assert "coordinator at 127.0.0.1:" in output, run.describe()
  assert "connected:" not in output, run.describe()
