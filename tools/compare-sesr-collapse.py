#!/usr/bin/env python3
"""LiteRT latency of SESR in expanded (training-time) form against npuc's collapsed form.

Builds the expanded model with `npuc zoo`, collapses it with
`npuc opt --passes=canonicalize,collapse-linear --verify-each`, loads both into LiteRT's
interpreter (default resolver: builtin kernels + XNNPACK delegate, same thread count),
feeds both the same random input in [0, 1], warms up, then times them interleaved
(A B A B ...) so drift in machine load hits both alike. Prints median and IQR latency of
each, the ratio expanded / collapsed, and the max abs difference between the outputs,
which must stay below --tolerance.

    .venv/bin/python tools/compare-sesr-collapse.py [--threads 1] [--rounds 30] [--json]

Exit codes: 0 done and outputs agree, 1 outputs differ by --tolerance or more (or are not
finite), 2 usage error or a failing step (build, npuc, LiteRT load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = "canonicalize,collapse-linear"


class StepError(Exception):
    """A step outside this script failed; the message says which and why."""


def run(cmd: list[str], what: str) -> None:
    """Runs `cmd`, raising StepError with its stderr if it fails."""
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise StepError(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()}")


def default_npuc() -> Path:
    """Builds the release driver and returns its path (honours CARGO_TARGET_DIR)."""
    run(["cargo", "build", "--quiet", "--release", "-p", "npuc"], "cargo build --release -p npuc")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "release" / "npuc"


def load(path: Path, threads: int):
    """An interpreter for `path` with the default resolver (XNNPACK for float)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise StepError(f"{path}: LiteRT could not load the model: {e}") from e
    return it


def signature(it) -> list[tuple[tuple[int, ...], str]]:
    """Shapes and dtypes of the inputs, then the outputs, for a like-for-like check."""
    details = it.get_input_details() + it.get_output_details()
    return [(tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]).name) for d in details]


def op_count(it) -> int | None:
    """Number of ops in the model as LiteRT sees it (before delegation), if exposed."""
    try:
        return len(it._get_ops_details())
    except AttributeError:
        return None


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 (numpy's linear interpolation)."""
    q1, med, q3 = np.percentile(np.asarray(xs), [25, 50, 75])
    return float(q1), float(med), float(q3)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npuc", type=Path, help="npuc binary (default: cargo build --release -p npuc)")
    ap.add_argument("--model", default="sesr-m5", help="zoo model (default: sesr-m5)")
    ap.add_argument("--scale", default="2", help="upsampling factor (default: 2)")
    ap.add_argument("--input", default="360x640", help="low-resolution input HxW (default: 360x640)")
    ap.add_argument("--threads", type=int, default=1, help="LiteRT threads for both models (default: 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs of each model first (default: 3)")
    ap.add_argument("--rounds", type=int, default=30, help="timed A B rounds (default: 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the input (default: 0)")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max abs output difference (default: 1e-4)")
    ap.add_argument("--dir", type=Path, help="keep the two .tflite files here (default: a temporary dir)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.threads < 1 or args.rounds < 1 or args.warmup < 0:
        ap.error("--threads and --rounds must be >= 1, --warmup >= 0")
    return args


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    npuc = args.npuc if args.npuc else default_npuc()
    if not npuc.is_file():
        raise StepError(f"{npuc}: no such npuc binary")
    expanded, collapsed = workdir / "expanded.tflite", workdir / "collapsed.tflite"
    run([str(npuc), "zoo", args.model, "--scale", args.scale, "--input", args.input, "-o", str(expanded)],
        "npuc zoo")
    run([str(npuc), "opt", str(expanded), f"--passes={PIPELINE}", "--verify-each", "-o", str(collapsed)],
        "npuc opt")

    models = {"expanded": load(expanded, args.threads), "collapsed": load(collapsed, args.threads)}
    sigs = {k: signature(it) for k, it in models.items()}
    if sigs["expanded"] != sigs["collapsed"]:
        raise StepError(f"inputs/outputs differ: expanded {sigs['expanded']}, collapsed {sigs['collapsed']}")

    # One input in [0, 1] (an image's range), the same array for both models.
    rng = np.random.default_rng(args.seed)
    for d in models["expanded"].get_input_details():
        x = rng.uniform(0.0, 1.0, size=d["shape"]).astype(d["dtype"])
        for it in models.values():
            it.set_tensor(d["index"], x)

    for it in models.values():
        for _ in range(args.warmup):
            it.invoke()
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.rounds):
        for name, it in models.items():
            t0 = time.perf_counter()
            it.invoke()
            times[name].append((time.perf_counter() - t0) * 1e3)

    # Inputs never changed, so the last invocation's outputs are those of the input above.
    diffs = []
    for da, db in zip(models["expanded"].get_output_details(), models["collapsed"].get_output_details()):
        a = models["expanded"].get_tensor(da["index"]).astype(np.float64)
        b = models["collapsed"].get_tensor(db["index"]).astype(np.float64)
        diffs.append(float(np.max(np.abs(a - b))) if a.size else 0.0)
    # NaN on either side makes the difference NaN; it counts as a failure, never as 0.
    max_diff = max(diffs, default=0.0) if all(np.isfinite(diffs)) else float("nan")

    result: dict = {
        "model": args.model,
        "scale": int(args.scale) if args.scale.isdigit() else args.scale,
        "input": args.input,
        "pipeline": PIPELINE,
        "threads": args.threads,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "resolver": "default (XNNPACK)",
        "models": {},
        "max_abs_diff": max_diff if np.isfinite(max_diff) else None,
        "tolerance": args.tolerance,
    }
    for name, path in (("expanded", expanded), ("collapsed", collapsed)):
        q1, med, q3 = quartiles(times[name])
        result["models"][name] = {
            "path": str(path) if args.dir else None,
            "bytes": path.stat().st_size,
            "ops": op_count(models[name]),
            "median_ms": med,
            "q1_ms": q1,
            "q3_ms": q3,
            "iqr_ms": q3 - q1,
        }
    result["ratio_expanded_over_collapsed"] = (
        result["models"]["expanded"]["median_ms"] / result["models"]["collapsed"]["median_ms"]
    )
    result["ok"] = bool(np.isfinite(max_diff) and max_diff < args.tolerance)
    return result


def print_table(r: dict) -> None:
    print(f"{r['model']} x{r['scale']} input {r['input']}, LiteRT {r['resolver']}, {r['threads']} thread(s), "
          f"{r['rounds']} interleaved rounds after {r['warmup']} warm-up runs")
    print(f"{'model':<10} {'ops':>5} {'size':>10} {'median ms':>10} {'IQR ms':>8} {'Q1..Q3 ms':>18}")
    for name, m in r["models"].items():
        ops = "?" if m["ops"] is None else str(m["ops"])
        print(f"{name:<10} {ops:>5} {m['bytes']:>10} {m['median_ms']:>10.3f} {m['iqr_ms']:>8.3f} "
              f"{m['q1_ms']:>8.3f}..{m['q3_ms']:<8.3f}")
    diff = "not finite" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.3g}"
    print(f"ratio expanded/collapsed: {r['ratio_expanded_over_collapsed']:.2f}x")
    print(f"max abs output diff: {diff} (tolerance {r['tolerance']:g}): {'ok' if r['ok'] else 'FAIL'}")


def main() -> int:
    args = parse_args()
    try:
        if args.dir:
            args.dir.mkdir(parents=True, exist_ok=True)
            result = measure(args, args.dir)
        else:
            with tempfile.TemporaryDirectory(prefix="sesr-collapse-") as d:
                result = measure(args, Path(d))
    except (StepError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    if not result["ok"]:
        print(f"error: outputs differ: max abs diff {result['max_abs_diff']} >= {args.tolerance}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
