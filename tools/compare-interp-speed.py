#!/usr/bin/env python3
"""npuc's reference interpreter against LiteRT, single-threaded, on the same models.

Runs the criterion benchmark `benches/benches/interp.rs` (one thread) and times LiteRT on
the same `.tflite` files in the same session: float models against LiteRT's default
kernels (XNNPACK delegate), integer models against its reference kernels (BUILTIN_REF),
which is what the goals compare to (float <= 3x XNNPACK, int8 <= 1x BUILTIN_REF). Prints
medians and the ratio npuc / LiteRT.

    .venv/bin/python tools/compare-interp-speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tools" / "fixtures" / "models"
GENERATED = ROOT / "target" / "bench-models"


def model_path(name: str) -> Path:
    p = FIXTURES / f"{name}.tflite"
    return p if p.exists() else GENERATED / f"{name}.tflite"


def litert_us(path: Path, resolver: str, repeats: int) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = {"default": OpResolverType.AUTO, "ref": OpResolverType.BUILTIN_REF}[resolver]
    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dt = d["dtype"]
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=d["shape"], endpoint=True, dtype=dt)
        else:
            a = rng.uniform(-1, 1, size=d["shape"]).astype(dt)
        it.set_tensor(d["index"], a)
    it.invoke()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter criterion runs (noisier)")
    args = ap.parse_args()
    subprocess.run(["cargo", "run", "--quiet", "--release", "-p", "npuc-benches", "--bin", "write-bench-models",
                    str(GENERATED)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    secs = ["--warm-up-time", "1", "--measurement-time", "3" if args.quick else "10"]
    subprocess.run(["cargo", "bench", "--quiet", "-p", "npuc-benches", "--bench", "interp", "--", *secs],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    crit = ROOT / "target" / "criterion" / "interp_1thread"
    print(f"{'model':<28} {'peer':<16} {'npuc':>10} {'LiteRT':>10} {'ratio':>7}")
    for est in sorted(crit.glob("*/new/estimates.json")):
        name = est.parent.parent.name
        npuc = json.loads(est.read_text())["median"]["point_estimate"] / 1000.0
        resolver = "ref" if "int8" in name else "default"
        label = "BUILTIN_REF" if resolver == "ref" else "XNNPACK"
        try:
            peer = litert_us(model_path(name), resolver, 5 if args.quick else 20)
        except (RuntimeError, ValueError):
            # LiteRT 2.3's reference resolver lacks some op versions (int8 DEPTH_TO_SPACE
            # v2): fall back to its default kernels and say so.
            peer = litert_us(model_path(name), "default", 5 if args.quick else 20)
            label = "default (no REF)"
        print(f"{name:<28} {label:<16} {npuc:>8.0f}us {peer:>8.0f}us {npuc / peer:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
