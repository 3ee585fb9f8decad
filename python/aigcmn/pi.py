"""The course project's example: the first 64 digits of pi as an 8 x 8 grid PNG.

    python -m aigcmn.pi [--out pi.png] [--seed N] [--model PATH]

The grid follows torchvision's ``make_grid`` defaults (8 per row, 2-pixel black padding);
the PNG is 8-bit grey, written with numpy and zlib only, atomically (temp + rename).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import zlib
from typing import Optional, Sequence

import numpy as np

from . import AiGcMn

#: 3.14159... without the point: the first 64 decimal digits of pi.
PI_64 = "3141592653589793238462643383279502884197169399375105820974944592"
assert len(PI_64) == 64


def grid(images: np.ndarray, per_row: int = 8, padding: int = 2) -> np.ndarray:
    """Tiles ``N x 1 x H x W`` floats in [-1, 1] into one uint8 image (0 = black)."""
    n, _, h, w = images.shape
    rows = -(-n // per_row)
    out = np.zeros((rows * (h + padding) + padding, per_row * (w + padding) + padding), np.uint8)
    # The exact inverse of p / 127.5 - 1: back to the generator's bytes.
    pixels = np.rint((images[:, 0] + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    for k in range(n):
        r, c = divmod(k, per_row)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        out[y : y + h, x : x + w] = pixels[k]
    return out


def png_bytes(gray: np.ndarray) -> bytes:
    """Encodes a 2-D uint8 array as an 8-bit greyscale PNG."""
    height, width = gray.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + gray[y].tobytes() for y in range(height))  # filter: none
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def write_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path`` and renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pi-", suffix=".png.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)  # mkstemp makes the file 0600; give it the usual mode
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigcmn.pi", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="pi.png", help="PNG to write (default: pi.png)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: fresh noise)")
    parser.add_argument("--model", default=None, help=".dgen file (default: the shipped model)")
    args = parser.parse_args(argv)
    try:
        gen = AiGcMn(model=args.model, seed=args.seed)
        images = gen.generator(PI_64)
        write_atomic(args.out, png_bytes(grid(images)))
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the first 64 digits of pi, 8 x 8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
