"""Python overhead of ``AiGcMn.generator`` against the bare core, in one process.

    python -m aigcmn.bench [--batch 64] [--runs 31]

Times ``AiGcMn(seed=1).generator(labels)`` (wall clock around the call: label checks,
the GIL release, generation, float conversion, the numpy array) and the core's own loop
over the same labels and seeds (timed inside Rust, no Python objects), alternating the
two so that machine noise hits both, and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Optional, Sequence

import numpy as np

from . import AiGcMn


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigcmn.bench")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--runs", type=int, default=31)
    args = parser.parse_args(argv)

    labels = np.arange(args.batch, dtype=np.int64) % 10
    gen = AiGcMn(seed=1)
    gen.generator(labels)  # warm-up
    wrapper, core = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        gen.generator(labels)
        wrapper.append(time.perf_counter() - start)
        core += gen._engine.core_batch_seconds(labels.astype(np.uint8).tobytes(), 1, 1)
    w, c = statistics.median(wrapper), statistics.median(core)
    print(f"batch {args.batch}, {args.runs} runs, medians:")
    print(f"  AiGcMn.generator: {w * 1e3:8.3f} ms ({w / args.batch * 1e6:.1f} us/digit)")
    print(f"  core loop:        {c * 1e3:8.3f} ms ({c / args.batch * 1e6:.1f} us/digit)")
    print(f"  ratio: {w / c:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
