#!/usr/bin/env python3
"""npuc's TFLite import and export against LiteRT's model loading, side by side.

Absolute times on a shared machine are noise; the ratio of two runs made one after the
other on the same machine is the figure worth reporting. This script:

1. writes the generated MobileNetV2 1.0 224x224 models (`write-bench-models`),
2. runs npuc's criterion benchmark `benches/benches/tflite.rs` and reads its median
   estimates from `target/criterion`,
3. times LiteRT building an interpreter from the same bytes (flatbuffer verification and
   model parsing into its own structures; no tensor allocation, no delegate), median of
   many runs, single-threaded,
4. prints a table with both and their ratio.

The peer does a comparable job (turn verified model bytes into an in-memory model), not an
identical one: LiteRT also resolves kernels, npuc also infers and checks every op's shape.

    .venv/bin/python tools/compare-tflite-io.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tools" / "fixtures" / "models"
GENERATED = ROOT / "target" / "bench-models"

MODELS = {
    "mobilenet_v2_035_96_int8": FIXTURES / "mobilenet_v2_035_96_int8.tflite",
    "mobilenet_v2_035_96_f32": FIXTURES / "mobilenet_v2_035_96_f32.tflite",
    "mobilenet_v2_100_224_int8": GENERATED / "mobilenet_v2_100_224_int8.tflite",
    "mobilenet_v2_100_224_f32": GENERATED / "mobilenet_v2_100_224_f32.tflite",
}


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)


def criterion_median_us(group: str, name: str) -> float:
    est = ROOT / "target" / "criterion" / group / name / "new" / "estimates.json"
    return json.loads(est.read_text())["median"]["point_estimate"] / 1000.0


def litert_load_us(path: Path, repeats: int) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = path.read_bytes()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Interpreter(
            model_content=data,
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter criterion measurement (noisier)")
    args = ap.parse_args()

    run(["cargo", "run", "--quiet", "--release", "-p", "npuc-benches", "--bin", "write-bench-models", str(GENERATED)])
    secs = ["--warm-up-time", "1", "--measurement-time", "2" if args.quick else "5"]
    run(["cargo", "bench", "--quiet", "-p", "npuc-benches", "--bench", "tflite", "--", *secs])

    repeats = 20 if args.quick else 100
    print(f"{'model':<28} {'MB':>6} {'npuc import':>12} {'npuc export':>12} {'LiteRT load':>12} {'import/LiteRT':>14}")
    for name, path in MODELS.items():
        imp = criterion_median_us("tflite_import", name)
        exp = criterion_median_us("tflite_export", name)
        peer = litert_load_us(path, repeats)
        mb = path.stat().st_size / 1e6
        print(f"{name:<28} {mb:>6.2f} {imp:>10.0f}us {exp:>10.0f}us {peer:>10.0f}us {imp / peer:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
