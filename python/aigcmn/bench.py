"""Timing ``AiGcMn.generator``, in one process.

    python -m aigcmn.bench [--batch 64] [--runs 31]
    python -m aigcmn.bench --threads [--batch 10000] [--runs 9]

The first form times ``AiGcMn(seed=1, threads=1).generator(labels)`` (wall clock
around the call: label checks, the GIL release, generation, float conversion, the numpy
array) and the core's own loop over the same labels and seeds (timed inside Rust, no
Python objects), alternating the two so that machine noise hits both, and prints the
medians and their ratio: the wrapper's overhead.

``--threads`` times the same call on one thread and on the default count
(``DGEN_THREADS`` or every core), alternating, and prints the medians, their ratio and
the median of the pair-by-pair ratios: the speed-up from threads.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Optional, Sequence

import numpy as np

from . import AiGcMn


def _timed(gen: AiGcMn, labels: np.ndarray) -> float:
    start = time.perf_counter()
    gen.generator(labels)
    return time.perf_counter() - start


def _overhead(batch: int, runs: int) -> None:
    labels = np.arange(batch, dtype=np.int64) % 10
    gen = AiGcMn(seed=1, threads=1)
    gen.generator(labels)  # warm-up
    wrapper, core = [], []
    for _ in range(runs):
        wrapper.append(_timed(gen, labels))
        core += gen._engine.core_batch_seconds(labels.astype(np.uint8).tobytes(), 1, 1)
    w, c = statistics.median(wrapper), statistics.median(core)
    print(f"batch {batch}, {runs} runs, medians:")
    print(f"  AiGcMn.generator: {w * 1e3:8.3f} ms ({w / batch * 1e6:.1f} us/digit)")
    print(f"  core loop:        {c * 1e3:8.3f} ms ({c / batch * 1e6:.1f} us/digit)")
    print(f"  ratio: {w / c:.3f}")


def _threads(batch: int, runs: int) -> None:
    labels = np.arange(batch, dtype=np.int64) % 10
    one, default = AiGcMn(seed=1, threads=1), AiGcMn(seed=1)
    one.generator(labels), default.generator(labels)  # warm-up
    t1, tn = [], []
    for _ in range(runs):
        t1.append(_timed(one, labels))
        tn.append(_timed(default, labels))
    a, b = statistics.median(t1), statistics.median(tn)
    pairs = statistics.median(x / y for x, y in zip(t1, tn))
    print(f"batch {batch}, {runs} alternating runs, medians:")
    print(f"  1 thread:  {a * 1e3:9.2f} ms ({batch / a:8.0f} digits/s)")
    print(f"  {default.threads} threads: {b * 1e3:9.2f} ms ({batch / b:8.0f} digits/s)")
    print(f"  speed-up: {a / b:.3f} (median of the pair ratios {pairs:.3f})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigcmn.bench")
    parser.add_argument("--threads", action="store_true", help="1 thread against the default")
    parser.add_argument("--batch", type=int, default=None, help="64; 10000 with --threads")
    parser.add_argument("--runs", type=int, default=None, help="31; 9 with --threads")
    args = parser.parse_args(argv)
    if args.threads:
        _threads(args.batch or 10_000, args.runs or 9)
    else:
        _overhead(args.batch or 64, args.runs or 31)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
