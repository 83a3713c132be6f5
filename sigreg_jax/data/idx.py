"""IDX files, the format in which MNIST and Fashion-MNIST are distributed.

An IDX file is a big-endian header (magic number, then one 32-bit size per
dimension) followed by the array's values in C order, as the MNIST page
(http://yann.lecun.com/exdb/mnist/) defines it. The files may be gzipped, as
the authors distribute them, or plain.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import zlib

import numpy as np

# The value type code (third byte of the magic number) and its big-endian dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions [N, rows, columns].
LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension [N].

# Base file names per split, as the MNIST and Fashion-MNIST authors name them.
# Each file may also carry a ".gz" suffix.
IDX_FILE_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_GZIP_SIGNATURE = b"\x1f\x8b"


def read_idx(
    path: str | os.PathLike[str], *, expected_magic: int | None = None
) -> np.ndarray:
  """Read one IDX file, gzipped or plain, into a native-endian array.

  Gzip compression is detected from the file's first two bytes, not its name.
  The header is checked strictly: the magic number must start with two zero
  bytes and name a known value type, and the data after the header must have
  exactly the byte count that the dimensions imply.

  Args:
    path: the IDX file, for example "train-images-idx3-ubyte.gz".
    expected_magic: if given, the whole 32-bit magic number the file must
      have, for example `IMAGES_MAGIC` (0x00000803).

  Returns:
    An array with the dimensions of the header, for example uint8
    [60000, 28, 28] for a Fashion-MNIST training image file.

  Raises:
    ValueError: on an invalid or unexpected magic number, a truncated header,
      a data byte count that does not match the dimensions, or a corrupt gzip
      stream. The message names the path.
    FileNotFoundError: when `path` does not exist.

  Example:
    >>> images = read_idx(  # doctest: +SKIP
    ...     "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
    ...     expected_magic=IMAGES_MAGIC)
    >>> images.shape, images.dtype  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'))
  """
  path = pathlib.Path(path)
  with open(path, "rb") as raw:
    is_gzipped = raw.read(2) == _GZIP_SIGNATURE
  opener = gzip.open if is_gzipped else open
  try:
    with opener(path, "rb") as stream:
      magic_bytes = stream.read(4)
      if len(magic_bytes) < 4:
        raise ValueError(
            f"IDX file {path} has {len(magic_bytes)} bytes, fewer than the 4-byte "
            f"magic number, so the file is truncated or empty."
        )
      magic = int.from_bytes(magic_bytes, "big")
      dtype, num_dimensions = _parse_magic(path, magic, expected_magic)

      header_bytes = stream.read(4 * num_dimensions)
      if len(header_bytes) < 4 * num_dimensions:
        raise ValueError(
            f"IDX file {path} ends inside its header: magic number 0x{magic:08X} "
            f"declares {num_dimensions} dimension sizes ({4 * num_dimensions} bytes), "
            f"but only {len(header_bytes)} bytes follow it, so the file is truncated."
        )
      shape = tuple(
          int.from_bytes(header_bytes[4 * axis : 4 * axis + 4], "big")
          for axis in range(num_dimensions)
      )

      data = stream.read()
  except (EOFError, gzip.BadGzipFile, zlib.error) as error:
    raise ValueError(
        f"IDX file {path} is not a valid gzip stream: {type(error).__name__}: {error}. "
        f"The file is truncated or corrupt, so copy it again from the original release."
    ) from error

  expected_bytes = math.prod(shape) * dtype.itemsize
  if len(data) != expected_bytes:
    problem = "truncated" if len(data) < expected_bytes else "followed by extra bytes"
    raise ValueError(
        f"IDX file {path} has {len(data)} bytes of data after its "
        f"{4 + 4 * num_dimensions}-byte header, but its dimensions {shape} of "
        f"{dtype.itemsize}-byte values need exactly {expected_bytes}, so the file is "
        f"{problem}. Copy it again from the original release."
    )
  return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _parse_magic(
    path: pathlib.Path, magic: int, expected_magic: int | None
) -> tuple[np.dtype, int]:
  """Return the value dtype and the number of dimensions that `magic` declares."""
  type_code, num_dimensions = (magic >> 8) & 0xFF, magic & 0xFF
  if expected_magic is not None and magic != expected_magic:
    raise ValueError(
        f"IDX file {path} has magic number 0x{magic:08X}; expected 0x{expected_magic:08X} "
        f"({_describe_magic(expected_magic)}). Check that the file is the one its name "
        f"says."
    )
  if magic >> 16 != 0 or type_code not in IDX_DTYPES or num_dimensions == 0:
    raise ValueError(
        f"IDX file {path} has invalid magic number 0x{magic:08X}; expected two zero "
        f"bytes, a value type code in {[f'0x{code:02X}' for code in IDX_DTYPES]} and a "
        f"non-zero number of dimensions. The file is not in IDX format."
    )
  return IDX_DTYPES[type_code], num_dimensions


def _describe_magic(magic: int) -> str:
  dtype = IDX_DTYPES.get((magic >> 8) & 0xFF)
  dtype_name = dtype.newbyteorder("=").name if dtype is not None else "unknown type"
  return f"{magic}: {dtype_name} values, {magic & 0xFF} dimensions"


def find_idx_files(folder: str | os.PathLike[str]) -> dict[str, pathlib.Path]:
  """Return the IDX files present in `folder`, keyed by base file name.

  A plain file is preferred over its gzipped copy when both are present.
  """
  folder = pathlib.Path(folder)
  found = {}
  if not folder.is_dir():
    return found
  for names in IDX_FILE_NAMES.values():
    for base_name in names:
      for candidate in (folder / base_name, folder / f"{base_name}.gz"):
        if candidate.is_file():
          found[base_name] = candidate
          break
  return found


def load_idx_splits(
    folder: str | os.PathLike[str], *, image_size: tuple[int, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Read the training and test splits of an MNIST-style IDX folder.

  Args:
    folder: a folder with the four files `train-images-idx3-ubyte`,
      `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
      `t10k-labels-idx1-ubyte`, each gzipped (".gz") or plain.
    image_size: the expected (rows, columns) of every image, (28, 28) for
      MNIST and Fashion-MNIST.

  Returns:
    {"train": (images, labels), "test": (images, labels)} with uint8 images
    [N, rows, columns, 1] and int32 labels [N].

  Raises:
    FileNotFoundError: when a file is missing. The message lists all missing files.
    NotADirectoryError: when `folder` is a file, for example one of the four.
    ValueError: on an invalid file (see `read_idx`), images of another size,
      or image and label files with different example counts.
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise NotADirectoryError(
        f"IDX data path {folder} is not a folder. Pass the folder that contains the four "
        f"IDX files, for example {folder.parent}."
    )
  found = find_idx_files(folder)
  missing = [
      base_name
      for names in IDX_FILE_NAMES.values()
      for base_name in names
      if base_name not in found
  ]
  if missing:
    raise FileNotFoundError(
        f"IDX folder {folder} is missing {', '.join(missing)} (each gzipped as '<name>.gz' "
        f"or plain); expected the four files of the MNIST or Fashion-MNIST release."
    )

  splits = {}
  for split, (images_name, labels_name) in IDX_FILE_NAMES.items():
    images_path, labels_path = found[images_name], found[labels_name]
    images = read_idx(images_path, expected_magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, expected_magic=LABELS_MAGIC)

    if images.shape[1:] != tuple(image_size):
      raise ValueError(
          f"IDX file {images_path} contains images of {images.shape[1]}x{images.shape[2]} "
          f"pixels; expected {image_size[0]}x{image_size[1]}. Check that the folder "
          f"contains the requested data set."
      )
    if len(images) != len(labels):
      raise ValueError(
          f"IDX file {images_path} has {len(images)} images but {labels_path} has "
          f"{len(labels)} labels; expected the same count. One of the files is from "
          f"another release or split."
      )
    splits[split] = (images[..., None], labels.astype(np.int32))
  return splits
