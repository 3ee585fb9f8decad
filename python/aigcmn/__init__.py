"""The int8 conditional MNIST digit generator behind the course project's interface.

    from aigcmn import AiGcMn
    images = AiGcMn().generator([3, 1, 4, 1, 5])   # float32, 5 x 1 x 28 x 28, in [-1, 1]

Pixels and floats
-----------------
The generator (the Rust crate generator-core) makes uint8 images, 0 = background,
255 = ink. Float output is ``x = p / 127.5 - 1`` computed in float32 by the core's own
``to_signed_unit``: 0 -> -1.0, 255 -> 1.0, and ``p == round((x + 1) * 127.5)`` recovers
the bytes exactly. ``AiGcMn.images_u8`` returns the bytes themselves.

Seeds
-----
Image ``i`` of a call uses the noise of seed ``(base + i) mod 2**32``, the schedule of
``firmware-sim --seed base`` and of the C example. ``base`` is the ``seed`` given to
``AiGcMn`` (so every call with the same labels returns the same images), or, when
``seed`` is None, a fresh 32-bit value from ``secrets.randbits`` drawn on every call.

Threads
-------
A batch is split into contiguous chunks that the threads take in turn, with the GIL
released (the floats are converted on the threads too); each image depends only on
(model, digit, seed), so the bytes do not depend on the thread count. ``AiGcMn(threads=N)`` sets the count; by default it is the environment variable
``DGEN_THREADS`` if set when the ``AiGcMn`` is made, else every core (Rust's
``available_parallelism``). Either must be a whole number from 1 to 1024, else
``ValueError``.
"""

from __future__ import annotations

import secrets
import sys
from os import PathLike
from typing import Any, Optional, Union

import numpy as np

from . import _native

__all__ = ["AiGcMn", "IMAGE_SIDE", "to_signed_unit"]

#: Width and height of one image.
IMAGE_SIDE = 28
_PIXELS = IMAGE_SIDE * IMAGE_SIDE
_SEED_LIMIT = 1 << 32


def to_signed_unit(images_u8: np.ndarray) -> np.ndarray:
    """The documented pixel formula, ``p / 127.5 - 1`` in float32, for reference and tests."""
    return images_u8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def _check_seed(seed: Any) -> Optional[int]:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int in 0..2**32-1 or None, got {seed!r}")
    if not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"seed {seed} is outside 0..2**32-1")
    return int(seed)


def _check_threads(threads: Any) -> int:
    """The thread count: ``threads`` if given, else ``DGEN_THREADS`` or every core."""
    if threads is None:
        return _native.default_threads()  # ValueError naming DGEN_THREADS if it is bad
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise ValueError(f"threads must be an int from 1 to {_native.MAX_THREADS} or None, got {threads!r}")
    if not 1 <= int(threads) <= _native.MAX_THREADS:
        raise ValueError(f"threads {threads} is outside 1-{_native.MAX_THREADS}")
    return int(threads)


def _torch_tensor_type():
    """torch.Tensor if torch is already imported by the caller, else None (never imports)."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def _labels_to_array(labels: Any) -> np.ndarray:
    """Validates labels of any accepted kind into a 1-D uint8 array of digits 0-9."""
    if isinstance(labels, str):
        for i, ch in enumerate(labels):
            if ch not in "0123456789":
                raise ValueError(f"label {ch!r} at index {i} is not a digit 0-9")
        return np.frombuffer(labels.encode("ascii"), dtype=np.uint8) - np.uint8(48)

    if isinstance(labels, (list, tuple)):
        for i, v in enumerate(labels):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"label {v!r} at index {i} is not an integer")
            if not 0 <= int(v) <= 9:
                raise ValueError(f"label {v} at index {i} is outside 0-9")
        return np.array([int(v) for v in labels], dtype=np.uint8)

    if isinstance(labels, np.ndarray):
        arr = labels
    else:
        raise TypeError(
            "labels must be a torch tensor, a numpy array, a list or tuple of ints, "
            f"or a string of digits, not {type(labels).__name__}"
        )

    if arr.dtype.kind not in "iu":
        raise ValueError(f"labels must have an integer dtype, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(arr.shape)}")
    bad = np.flatnonzero((arr < 0) | (arr > 9))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"label {arr[i]} at index {i} is outside 0-9")
    return arr.astype(np.uint8)


class AiGcMn:
    """Drop-in for the course project's generator class.

    ``model`` is the path of a ``.dgen`` file (default: the model shipped in the package);
    ``seed`` a base seed for reproducible output (None: fresh noise on every call);
    ``threads`` the number of threads a batch is split across (None: ``DGEN_THREADS``
    if set when the object is made, else every core). Raises ``ValueError`` for a bad model file, seed or thread
    count (``DGEN_THREADS`` included), ``OSError`` if the file is unreadable.
    """

    def __init__(
        self,
        model: Union[str, PathLike, None] = None,
        seed: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None:
        if model is None:
            self._engine = _native.Engine(None)
        else:
            with open(model, "rb") as f:
                data = f.read()
            try:
                self._engine = _native.Engine(data)
            except ValueError as e:
                raise ValueError(f"{model}: {e}") from None
        self.seed = _check_seed(seed)
        self.threads = _check_threads(threads)

    def _base_seed(self) -> int:
        return secrets.randbits(32) if self.seed is None else self.seed

    def generator(self, labels: Any) -> Any:
        """Generates one digit per label: float32, ``N x 1 x 28 x 28``, in [-1, 1].

        ``labels`` is a 1-D torch tensor or numpy array of an integer dtype, a list or
        tuple of ints, or a string of digits. The result is a torch tensor when
        ``labels`` is one, else a numpy array. ``ValueError`` names the first label
        outside 0-9, a non-integer dtype or a shape that is not 1-D. The GIL is released
        while the images are generated, on ``self.threads`` threads.
        """
        tensor_type = _torch_tensor_type()
        is_torch = tensor_type is not None and isinstance(labels, tensor_type)
        if is_torch:
            if labels.dtype.is_floating_point or labels.dtype.is_complex:
                raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
            arr = _labels_to_array(labels.detach().cpu().numpy())
        else:
            arr = _labels_to_array(labels)
        n = arr.shape[0]
        if n == 0:
            out = np.empty((0, 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
        else:
            raw = self._engine.generate_f32(arr.tobytes(), self._base_seed(), self.threads)
            out = np.frombuffer(raw, dtype=np.float32).reshape(n, 1, IMAGE_SIDE, IMAGE_SIDE)
        if is_torch:
            import torch  # already imported by the caller: labels is a torch tensor

            return torch.from_numpy(out)
        return out

    def images_u8(self, labels: Any) -> np.ndarray:
        """The raw images for ``labels`` (same inputs and seeds as ``generator``):
        uint8, ``N x 28 x 28``, 0 = background, 255 = ink."""
        arr = _labels_to_array(labels)
        raw = self._engine.generate_u8(arr.tobytes(), self._base_seed(), self.threads)
        return np.frombuffer(raw, dtype=np.uint8).reshape(arr.shape[0], IMAGE_SIDE, IMAGE_SIDE)

    def __repr__(self) -> str:
        return (
            f"AiGcMn(seed={self.seed!r}, threads={self.threads}, "
            f"model_bytes={self._engine.model_bytes})"
        )
