"""Multi-process start-up on JAX's distributed runtime, and per-process batch rows.

One Python process runs per host (or per accelerator), all running the same
program. ``initialize_distributed`` connects them through
``jax.distributed.initialize`` before any JAX computation; on a single process
it does nothing. ``process_batch_rows`` then returns the rows of each global
batch that this process loads, so that ``jax.make_array_from_process_local_data``
assembles exactly the batch a single process would have built.

The settings come from arguments, else from environment variables:

=================================== =========================================
``JAX_COORDINATOR_ADDRESS``         ``host:port`` of process 0's coordinator
``JAX_NUM_PROCESSES``               number of processes
``JAX_PROCESS_ID``                  this process's id, in ``[0, num_processes)``
``JAX_LOCAL_DEVICE_IDS``            comma-separated local device ids to use
``SIGREG_CLUSTER_DETECTION_METHOD`` ``auto``, a JAX method name or
                                    ``deactivate`` (see below)
=================================== =========================================

JAX itself reads ``JAX_COORDINATOR_ADDRESS`` and ``JAX_LOCAL_DEVICE_IDS``;
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` are the names Orbax's multi-host
test runner uses. When none is set, JAX's cluster detection runs if a
multi-process launcher is visible in the environment (SLURM or Open MPI with
more than one task, or a GKE TPU slice with more than one host). Cloud TPU VM
pod slices publish their topology only through the metadata server, so there
set ``SIGREG_CLUSTER_DETECTION_METHOD=auto`` (or pass
``cluster_detection_method="auto"``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

logger = logging.getLogger(__name__)

COORDINATOR_ADDRESS_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"
LOCAL_DEVICE_IDS_ENV = "JAX_LOCAL_DEVICE_IDS"
CLUSTER_DETECTION_ENV = "SIGREG_CLUSTER_DETECTION_METHOD"

# The defaults of jax.distributed.initialize in jax 0.10.2.
DEFAULT_INITIALIZATION_TIMEOUT = 300
DEFAULT_HEARTBEAT_TIMEOUT = 100
DEFAULT_SHUTDOWN_TIMEOUT = 300


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
  """Start-up settings after merging arguments with environment variables.

  Attributes:
    coordinator_address: ``host:port`` of process 0, or None to let JAX detect
      it.
    num_processes: number of processes, or None to let JAX detect it.
    process_id: this process's id, or None to let JAX detect it.
    local_device_ids: the local devices this process uses, or None for all.
    cluster_detection_method: passed to ``jax.distributed.initialize``; None
      tries every detection method JAX has.
    launcher: the multi-process launcher found in the environment ("slurm",
      "ompi", "gketpu"), or None.
  """

  coordinator_address: str | None
  num_processes: int | None
  process_id: int | None
  local_device_ids: tuple[int, ...] | None
  cluster_detection_method: str | None
  launcher: str | None

  @property
  def is_explicit(self) -> bool:
    """Whether the address, process count or process id was given."""
    return any(
        value is not None
        for value in (self.coordinator_address, self.num_processes, self.process_id)
    )

  @property
  def can_detect(self) -> bool:
    """Whether JAX's cluster detection may fill in missing settings."""
    if self.cluster_detection_method == "deactivate":
      return False
    return self.cluster_detection_method is not None or self.launcher is not None

  @property
  def is_multi_process(self) -> bool:
    """Whether ``jax.distributed.initialize`` should run."""
    if self.num_processes == 1:
      return False
    return self.is_explicit or self.can_detect


def _parse_int(name: str, text: str) -> int:
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"{name} must be an integer, got {text!r}") from None


def _parse_device_ids(name: str, text: str) -> tuple[int, ...]:
  return tuple(_parse_int(name, part.strip()) for part in text.split(",") if part.strip())


def detect_launcher(environ: Mapping[str, str] | None = None) -> str | None:
  """Names the multi-process launcher visible in the environment, if any.

  Only launchers that start more than one process count: a single SLURM task
  is left alone, because JAX's SLURM detection would restrict it to one GPU.
  The variables checked are the ones JAX's own cluster detection reads (jax
  0.10.2, ``jax/_src/clusters``).

  Args:
    environ: the environment to inspect; ``os.environ`` when None.

  Returns:
    "slurm", "ompi" or "gketpu" when that launcher started several processes,
    else None.

  Example:
    >>> detect_launcher({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4"})
    'ompi'
  """
  environ = os.environ if environ is None else environ

  def count(name: str) -> int:
    try:
      return int(environ.get(name, "0"))
    except ValueError:
      return 0

  slurm_variables = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS",
                     "SLURM_PROCID", "SLURM_LOCALID")
  if all(name in environ for name in slurm_variables) and count("SLURM_NTASKS") > 1:
    return "slurm"
  if "OMPI_MCA_orte_hnp_uri" in environ and count("OMPI_COMM_WORLD_SIZE") > 1:
    return "ompi"
  tpu_hosts = environ.get("TPU_PROCESS_ADDRESSES") or environ.get("TPU_WORKER_HOSTNAMES")
  if tpu_hosts and len(tpu_hosts.split(",")) > 1:
    return "gketpu"
  return None


def resolve_settings(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | int | None = None,
    cluster_detection_method: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> DistributedSettings:
  """Merges start-up arguments with the environment; arguments win.

  Args:
    coordinator_address: ``host:port`` of process 0, or None.
    num_processes: number of processes, or None.
    process_id: this process's id, or None.
    local_device_ids: local device ids this process uses, or None.
    cluster_detection_method: "auto" (every method JAX has), a JAX method
      name ("slurm", "ompi", "mpi4py", "gcetpu", "gketpu", ...),
      "deactivate" (none), or None to read ``SIGREG_CLUSTER_DETECTION_METHOD``.
    environ: the environment to read; ``os.environ`` when None.

  Returns:
    The merged ``DistributedSettings``.

  Raises:
    ValueError: if a number does not parse, or ``process_id`` is outside
      ``[0, num_processes)``.

  Example:
    >>> env = {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
    >>> resolve_settings("10.0.0.1:1234", environ=env).process_id
    1
  """
  environ = os.environ if environ is None else environ

  if coordinator_address is None:
    coordinator_address = environ.get(COORDINATOR_ADDRESS_ENV) or None
  if num_processes is None and environ.get(NUM_PROCESSES_ENV):
    num_processes = _parse_int(NUM_PROCESSES_ENV, environ[NUM_PROCESSES_ENV])
  if process_id is None and environ.get(PROCESS_ID_ENV):
    process_id = _parse_int(PROCESS_ID_ENV, environ[PROCESS_ID_ENV])
  if isinstance(local_device_ids, int):
    local_device_ids = (local_device_ids,)
  if local_device_ids is None and environ.get(LOCAL_DEVICE_IDS_ENV):
    local_device_ids = _parse_device_ids(LOCAL_DEVICE_IDS_ENV, environ[LOCAL_DEVICE_IDS_ENV])
  if cluster_detection_method is None:
    cluster_detection_method = environ.get(CLUSTER_DETECTION_ENV) or None

  if num_processes is not None and num_processes < 1:
    raise ValueError(
        f"num_processes must be positive, got {num_processes}; set "
        f"{NUM_PROCESSES_ENV} or num_processes to the number of processes started")
  if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
    raise ValueError(
        f"process_id must be in [0, {num_processes}), got {process_id}; number the "
        f"processes 0 to {num_processes - 1} with {PROCESS_ID_ENV} or process_id")

  return DistributedSettings(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
      local_device_ids=None if local_device_ids is None else tuple(local_device_ids),
      cluster_detection_method=cluster_detection_method,
      launcher=detect_launcher(environ),
  )


def _describe(value: object) -> str:
  return "(auto-detected)" if value is None else str(value)


def _check_complete(settings: DistributedSettings) -> None:
  """Raises when only some settings are given and nothing can detect the rest."""
  values = {
      f"coordinator_address ({COORDINATOR_ADDRESS_ENV})": settings.coordinator_address,
      f"num_processes ({NUM_PROCESSES_ENV})": settings.num_processes,
      f"process_id ({PROCESS_ID_ENV})": settings.process_id,
  }
  missing = [name for name, value in values.items() if value is None]
  if not missing or settings.can_detect:
    return
  raise ValueError(
      f"Multi-process settings are incomplete: missing {', '.join(missing)}. Give "
      "all three, or num_processes=1 for a single-process run, or set "
      f"{CLUSTER_DETECTION_ENV}=auto to let JAX detect the rest.")


def _jax_detection_method(settings: DistributedSettings) -> str | None:
  """Returns the ``cluster_detection_method`` to pass to JAX."""
  if settings.cluster_detection_method == "auto":
    return None
  if settings.cluster_detection_method is None and settings.launcher is None:
    # Every setting is given. JAX would still run its cluster detection to
    # pick local devices (one GPU per process under SLURM), so skip it.
    return "deactivate"
  return settings.cluster_detection_method


def _warn_if_not_connected(
    connected: threading.Event, settings: DistributedSettings, timeout: float
) -> None:
  """Logs which rendezvous failed when the connection outlives ``timeout``.

  jax 0.10.2 ends a process whose peers never arrive with a C++ fatal error
  (SIGABRT) that names neither the address nor the fix, about 5 s after
  ``initialization_timeout`` (measured on CPU), so this message comes first.
  """
  if connected.wait(timeout):
    return
  message = (
      f"Timed out after {timeout:.0f} s waiting for all "
      f"{_describe(settings.num_processes)} processes to connect to the JAX "
      f"coordinator at {_describe(settings.coordinator_address)}; this is process "
      f"{_describe(settings.process_id)}. "
      "Check that every process was started with the same coordinator address and "
      "process count, that process 0 is running and reachable on that port, and "
      "that no process id is missing or repeated. JAX ends this process next.")
  logger.error(message)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | int | None = None,
    *,
    cluster_detection_method: str | None = None,
    initialization_timeout: int = DEFAULT_INITIALIZATION_TIMEOUT,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT,
    shutdown_timeout: int = DEFAULT_SHUTDOWN_TIMEOUT,
) -> bool:
  """Starts JAX's multi-process runtime when this run has several processes.

  Call it first, before any JAX computation or device query. It does nothing
  on a single process: when ``num_processes`` is 1, or when no setting is
  given, ``SIGREG_CLUSTER_DETECTION_METHOD`` is unset and no multi-process
  launcher is detected. A second call after a successful one does nothing.

  Otherwise it calls ``jax.distributed.initialize``, which blocks until all
  processes have connected to the coordinator that process 0 starts. If they
  have not after ``initialization_timeout`` seconds, this function logs an
  error naming the address, and JAX ends the process. Once running, a process
  that stops sending heartbeats for ``heartbeat_timeout`` seconds (killed,
  crashed, preempted) makes JAX end every other process.

  Args:
    coordinator_address: ``host:port`` of process 0, reachable from every
      process; else ``JAX_COORDINATOR_ADDRESS`` or auto-detection.
    num_processes: number of processes; else ``JAX_NUM_PROCESSES`` or
      auto-detection.
    process_id: this process's id in ``[0, num_processes)``; else
      ``JAX_PROCESS_ID`` or auto-detection.
    local_device_ids: local device ids this process uses (one process per GPU
      passes its GPU's id); else ``JAX_LOCAL_DEVICE_IDS``, else all.
    cluster_detection_method: "auto", a JAX method name ("slurm", "ompi",
      "mpi4py", "gcetpu", "gketpu"), "deactivate", or None to read
      ``SIGREG_CLUSTER_DETECTION_METHOD``.
    initialization_timeout: seconds to wait for every process to connect.
    heartbeat_timeout: seconds without a heartbeat after which a process
      counts as dead and the others are ended.
    shutdown_timeout: seconds a finishing process waits for the others at
      exit.

  Returns:
    True if JAX's multi-process runtime is running after the call, False for a
    single-process run.

  Raises:
    ValueError: if a setting is invalid, or only some of the address, count
      and id are given and JAX cannot detect the rest.
    RuntimeError: if JAX already initialised its backend (any computation or
      ``jax.devices()`` call) before this call.

  Example:
    On each of two hosts, with ``PROCESS_ID`` 0 on the first and 1 on the
    second::

      initialize_distributed("10.0.0.1:8476", num_processes=2,
                             process_id=int(os.environ["PROCESS_ID"]))
  """
  if jax.distributed.is_initialized():
    logger.debug("JAX's distributed runtime is already initialized")
    return True

  settings = resolve_settings(
      coordinator_address, num_processes, process_id, local_device_ids,
      cluster_detection_method)
  if not settings.is_multi_process:
    logger.debug("Single-process run; not starting JAX's distributed runtime")
    return False

  _check_complete(settings)
  detection = _jax_detection_method(settings)
  detection_name = {None: settings.launcher or "auto", "deactivate": "off"}.get(detection, detection)
  logger.info(
      "Starting JAX's distributed runtime: coordinator %s, process %s of %s, "
      "cluster detection %s, initialization timeout %d s, heartbeat timeout %d s",
      _describe(settings.coordinator_address), _describe(settings.process_id),
      _describe(settings.num_processes), detection_name,
      initialization_timeout, heartbeat_timeout)

  connected = threading.Event()
  watchdog = threading.Thread(
      target=_warn_if_not_connected,
      args=(connected, settings, initialization_timeout + 1),
      name="sigreg-distributed-watchdog",
      daemon=True,
  )
  watchdog.start()
  start = time.monotonic()
  try:
    jax.distributed.initialize(
        coordinator_address=settings.coordinator_address,
        num_processes=settings.num_processes,
        process_id=settings.process_id,
        local_device_ids=(None if settings.local_device_ids is None
                          else list(settings.local_device_ids)),
        cluster_detection_method=detection,
        initialization_timeout=initialization_timeout,
        heartbeat_timeout_seconds=heartbeat_timeout,
        shutdown_timeout_seconds=shutdown_timeout,
    )
  finally:
    connected.set()

  logger.info(
      "Connected to JAX's distributed runtime in %.1f s: process %d of %d, "
      "%d local devices, %d global devices", time.monotonic() - start,
      jax.process_index(), jax.process_count(), jax.local_device_count(),
      jax.device_count())
  return True


def is_main_process() -> bool:
  """Returns whether this is process 0, which writes metrics and summaries."""
  return jax.process_index() == 0


def process_batch_rows(global_batch_size: int, sharding: Mesh | NamedSharding) -> np.ndarray:
  """Returns the rows of each global batch that this process loads, in order.

  ``jax.make_array_from_process_local_data`` fills this process's devices from
  its local rows, taking the row blocks its devices own in ascending order.
  Loading ``global_batch[process_batch_rows(...)]`` on every process therefore
  builds the same global array as one process loading the whole batch, even
  when a topology-aware mesh (TPU) interleaves processes along the batch axis.

  Args:
    global_batch_size: examples per step over all processes.
    sharding: the batch sharding, or a mesh whose first axis the batch is
      split over.

  Returns:
    int64 [global_batch_size / num_processes], ascending global row indices.

  Raises:
    ValueError: if the batch does not split evenly over the sharding's devices.

  Example:
    >>> mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1])
    >>> process_batch_rows(4, mesh)
    array([0, 1, 2, 3])
  """
  if isinstance(sharding, Mesh):
    sharding = NamedSharding(sharding, PartitionSpec(sharding.axis_names[0]))
  if global_batch_size <= 0:
    raise ValueError(f"global batch size must be positive, got {global_batch_size}")
  try:
    sharding.shard_shape((global_batch_size,))
  except ValueError as error:
    raise ValueError(
        f"global batch size {global_batch_size} does not split evenly over the batch "
        f"axis of {sharding}; use a multiple of the number of batch shards") from error

  blocks = {
      (index[0].start or 0, global_batch_size if index[0].stop is None else index[0].stop)
      for index in sharding.addressable_devices_indices_map((global_batch_size,)).values()
  }
  return np.concatenate([np.arange(start, stop) for start, stop in sorted(blocks)])
