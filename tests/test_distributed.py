"""Tests of multi-process start-up settings and per-process batch rows.

These run in one process: ``jax.distributed.initialize`` is replaced by a
recorder. tests/test_multihost.py starts real processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from sigreg_jax import distributed

REPOSITORY = Path(__file__).resolve().parent.parent

SLURM_TWO_TASKS = {
    "SLURM_JOB_ID": "42", "SLURM_STEP_NODELIST": "node[1-2]", "SLURM_NTASKS": "2",
    "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
}


@pytest.fixture
def clean_environment(monkeypatch):
  """Removes every variable that could turn a test run into a multi-process one."""
  for name in (distributed.COORDINATOR_ADDRESS_ENV, distributed.NUM_PROCESSES_ENV,
               distributed.PROCESS_ID_ENV, distributed.LOCAL_DEVICE_IDS_ENV,
               distributed.CLUSTER_DETECTION_ENV, *SLURM_TWO_TASKS,
               "OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "TPU_PROCESS_ADDRESSES",
               "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


@pytest.fixture
def initialize_calls(clean_environment):
  """Records calls to ``jax.distributed.initialize`` instead of connecting."""
  calls = []
  clean_environment.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
  clean_environment.setattr(jax.distributed, "is_initialized", lambda: False)
  return calls


def test_resolve_settings_reads_environment():
  environ = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
             "JAX_PROCESS_ID": "3", "JAX_LOCAL_DEVICE_IDS": "0, 1"}
  settings = distributed.resolve_settings(environ=environ)
  assert settings.coordinator_address == "10.0.0.1:1234"
  assert settings.num_processes == 4
  assert settings.process_id == 3
  assert settings.local_device_ids == (0, 1)
  assert settings.is_multi_process


def test_resolve_settings_arguments_win():
  environ = {"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
  settings = distributed.resolve_settings("host:1", 2, 1, 5, environ=environ)
  assert (settings.num_processes, settings.process_id) == (2, 1)
  assert settings.local_device_ids == (5,)


def test_resolve_settings_rejects_bad_numbers():
  with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer, got 'two'"):
    distributed.resolve_settings(environ={"JAX_NUM_PROCESSES": "two"})
  with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\), got 2"):
    distributed.resolve_settings("host:1", 2, 2, environ={})
  with pytest.raises(ValueError, match="num_processes must be positive, got 0"):
    distributed.resolve_settings(num_processes=0, environ={})


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    (SLURM_TWO_TASKS, "slurm"),
    ({**SLURM_TWO_TASKS, "SLURM_NTASKS": "1"}, None),
    ({"OMPI_MCA_orte_hnp_uri": "1;tcp://10.0.0.1:1", "OMPI_COMM_WORLD_SIZE": "8"}, "ompi"),
    ({"OMPI_MCA_orte_hnp_uri": "1;tcp://10.0.0.1:1", "OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"TPU_WORKER_HOSTNAMES": "host-0,host-1"}, "gketpu"),
    ({"TPU_WORKER_HOSTNAMES": "host-0"}, None),
])
def test_detect_launcher(environ, expected):
  assert distributed.detect_launcher(environ) == expected


@pytest.mark.parametrize("kwargs, environ", [
    ({}, {}),
    ({"num_processes": 1}, SLURM_TWO_TASKS),
    ({"cluster_detection_method": "deactivate"}, SLURM_TWO_TASKS),
    ({}, {"SIGREG_CLUSTER_DETECTION_METHOD": "deactivate", **SLURM_TWO_TASKS}),
])
def test_settings_single_process(kwargs, environ):
  assert not distributed.resolve_settings(**kwargs, environ=environ).is_multi_process


def test_initialize_single_process_does_nothing(initialize_calls):
  assert distributed.initialize_distributed() is False
  assert distributed.initialize_distributed(num_processes=1) is False
  assert initialize_calls == []


def test_initialize_explicit_skips_cluster_detection(initialize_calls):
  assert distributed.initialize_distributed(
      "127.0.0.1:1234", 2, 1, initialization_timeout=7, heartbeat_timeout=3)
  [call] = initialize_calls
  assert call["coordinator_address"] == "127.0.0.1:1234"
  assert call["num_processes"] == 2
  assert call["process_id"] == 1
  assert call["cluster_detection_method"] == "deactivate"
  assert call["initialization_timeout"] == 7
  assert call["heartbeat_timeout_seconds"] == 3


def test_initialize_reads_environment(initialize_calls, clean_environment):
  clean_environment.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:99")
  clean_environment.setenv("JAX_NUM_PROCESSES", "2")
  clean_environment.setenv("JAX_PROCESS_ID", "0")
  assert distributed.initialize_distributed()
  [call] = initialize_calls
  assert call["coordinator_address"] == "10.0.0.1:99"
  assert call["num_processes"] == 2
  assert call["process_id"] == 0


def test_initialize_detected_launcher_lets_jax_detect(initialize_calls, clean_environment):
  for name, value in SLURM_TWO_TASKS.items():
    clean_environment.setenv(name, value)
  assert distributed.initialize_distributed()
  [call] = initialize_calls
  assert call["cluster_detection_method"] is None
  assert call["coordinator_address"] is None


def test_initialize_explicit_with_detection_off(initialize_calls):
  assert distributed.initialize_distributed(
      "127.0.0.1:1234", 2, 0, cluster_detection_method="deactivate")
  [call] = initialize_calls
  assert call["cluster_detection_method"] == "deactivate"
  with pytest.raises(ValueError, match=r"missing process_id \(JAX_PROCESS_ID\)"):
    distributed.initialize_distributed(
        "127.0.0.1:1234", 2, cluster_detection_method="deactivate")


def test_initialize_auto_detection(initialize_calls):
  assert distributed.initialize_distributed(cluster_detection_method="auto")
  [call] = initialize_calls
  assert call["cluster_detection_method"] is None


def test_initialize_incomplete_settings_raise(initialize_calls):
  with pytest.raises(ValueError, match=r"missing coordinator_address \(JAX_COORDINATOR_ADDRESS\)"):
    distributed.initialize_distributed(num_processes=2, process_id=0)
  assert initialize_calls == []


def test_initialize_timeout_logs_address(clean_environment, caplog):
  def slow_initialize(**kwargs):
    time.sleep(1.5)

  clean_environment.setattr(jax.distributed, "initialize", slow_initialize)
  clean_environment.setattr(jax.distributed, "is_initialized", lambda: False)
  with caplog.at_level(logging.ERROR, logger=distributed.logger.name):
    distributed.initialize_distributed("10.1.2.3:4567", 2, 1, initialization_timeout=0)
  [record] = caplog.records
  assert "Timed out after 1 s" in record.getMessage()
  assert "coordinator at 10.1.2.3:4567" in record.getMessage()
  assert "this is process 1" in record.getMessage()


def test_process_batch_rows_single_process():
  mesh = jax.make_mesh((4,), ("data",), devices=jax.devices()[:4],
                       axis_types=(jax.sharding.AxisType.Auto,))
  np.testing.assert_array_equal(distributed.process_batch_rows(8, mesh), np.arange(8))
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  np.testing.assert_array_equal(distributed.process_batch_rows(4, sharding), np.arange(4))


def test_process_batch_rows_replicated_axis():
  mesh = jax.make_mesh((2, 2), ("data", "model"), devices=jax.devices()[:4],
                       axis_types=(jax.sharding.AxisType.Auto,) * 2)
  np.testing.assert_array_equal(distributed.process_batch_rows(6, mesh), np.arange(6))


def test_process_batch_rows_rejects_uneven_batch():
  mesh = jax.make_mesh((4,), ("data",), devices=jax.devices()[:4],
                       axis_types=(jax.sharding.AxisType.Auto,))
  with pytest.raises(ValueError, match="global batch size 6 does not split evenly"):
    distributed.process_batch_rows(6, mesh)
  with pytest.raises(ValueError, match="global batch size must be positive, got 0"):
    distributed.process_batch_rows(0, mesh)


def test_is_main_process_single_process():
  assert distributed.is_main_process()


def test_imports_leave_backend_uninitialised():
  # initialize_distributed must run before JAX starts its backend, and the
  # trainer calls it only after the entry points have imported everything.
  code = (
      "import experiments.vit_cifar100, experiments.configs.mlp_sgd, "
      "experiments.configs.vit_cifar100, sigreg_jax, sigreg_jax.training\n"
      "from jax._src import xla_bridge\n"
      "print(xla_bridge.backends_are_initialized())\n"
  )
  result = subprocess.run(
      [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
      cwd=REPOSITORY, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "False", "importing the package started JAX's backend"
