"""Training metrics: parameter-tree norms and a JSON-lines metrics file."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

logger = logging.getLogger(__name__)


def global_norm(tree: Any) -> jax.Array:
  """Returns the L2 norm of all leaves of ``tree`` taken as one vector, in float32."""
  return optax.tree.norm(jax.tree.map(lambda x: x.astype(jnp.float32), tree))


def to_python(value: Any) -> Any:
  """Converts arrays and numpy scalars to floats, ints and lists for JSON.

  Non-finite floats become the strings "nan", "inf" and "-inf", because JSON
  has no literal for them.
  """
  if isinstance(value, Mapping):
    return {str(k): to_python(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_python(v) for v in value]
  if isinstance(value, (jax.Array, np.ndarray, np.generic)):
    value = np.asarray(value)
    if value.ndim:
      return [to_python(v) for v in value.tolist()]
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


class MetricsWriter:
  """Appends one JSON object per line to ``<workdir>/metrics.jsonl``.

  Only process 0 writes, so a multi-host run produces one file. Every record
  carries a ``step`` and a ``kind`` (``"train"`` or ``"eval"``).
  """

  def __init__(self, workdir: str, *, filename: str = "metrics.jsonl"):
    self.path = os.path.join(workdir, filename)
    self.enabled = jax.process_index() == 0

  def read(self) -> list[dict[str, Any]]:
    """Returns the records already in the file (an empty list if none)."""
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_after(self, step: int) -> list[dict[str, Any]]:
    """Drops records with a step above ``step`` and returns the rest.

    A run resumed from the checkpoint of ``step`` repeats the steps after it,
    so their records from the interrupted run are removed to avoid duplicates.
    """
    records = self.read()
    kept = [record for record in records if record["step"] <= step]
    if self.enabled and len(kept) != len(records):
      logger.info("Dropping %d metric records after step %d from %s",
                  len(records) - len(kept), step, self.path)
      with open(self.path, "w") as f:
        for record in kept:
          f.write(json.dumps(record) + "\n")
    return kept

  def write(self, step: int, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Appends one record and returns it as written."""
    record = {"step": int(step), "kind": kind, **to_python(dict(values))}
    if self.enabled:
      with open(self.path, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record
