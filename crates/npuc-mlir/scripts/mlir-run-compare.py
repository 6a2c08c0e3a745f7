#!/usr/bin/env python3
"""Runs a float model through MLIR's own CPU path and compares with npuc's interpreter.

The exported TOSA goes TOSA -> linalg -> loops -> LLVM with mlir-opt-22 and runs under
mlir-runner-22; a generated `@entry` feeds seeded inputs (as dense hex constants) to
`@main` and prints every output with printMemrefF32. The same inputs go to `npuc run`.
Prints the max relative error per output and exits 1 if any exceeds --tol.

usage: mlir-run-compare.py --npuc PATH MODEL [--seed N] [--tol 1e-5]
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

LLVM = pathlib.Path("/usr/lib/llvm-22")
PIPELINE = (
    "builtin.module(func.func(tosa-to-linalg-named,tosa-to-linalg,tosa-to-arith,tosa-to-tensor),"
    "one-shot-bufferize{bufferize-function-boundaries},"
    "func.func(convert-linalg-to-loops,lower-affine,convert-scf-to-cf),"
    "expand-strided-metadata,lower-affine,convert-to-llvm,reconcile-unrealized-casts)"
)


def ttype(shape):
    return "tensor<" + "".join(f"{d}x" for d in shape) + "f32>"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--npuc", required=True, help="an npuc built with --features mlir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mlir-run-"))
    text = subprocess.run([args.npuc, "convert", args.model, "-o", "-", "--emit", "mlir"],
                          check=True, capture_output=True, text=True).stdout
    sig = re.search(r"func\.func @main\((.*?)\) -> \(?(.*?)\)? \{", text)
    if sig is None:
        sys.exit("no @main signature in the export")
    in_types = re.findall(r"tensor<([0-9x]*)f32>", sig.group(1))
    out_types = re.findall(r"tensor<([0-9x]*)f32>", sig.group(2))
    shapes_in = [[int(d) for d in t.split("x") if d] for t in in_types]
    shapes_out = [[int(d) for d in t.split("x") if d] for t in out_types]

    rng = np.random.default_rng(args.seed)
    inputs = [rng.uniform(-1, 1, size=s).astype(np.float32) for s in shapes_in]
    npuc_args = [args.npuc, "run", args.model, "-o", str(tmp / "ref")]
    lines = []
    for i, x in enumerate(inputs):
        np.save(tmp / f"in{i}.npy", x)
        npuc_args += ["--input", f"{i}={tmp / f'in{i}.npy'}"]
        lines.append(f'    %x{i} = arith.constant dense<"0x{x.tobytes().hex().upper()}"> : {ttype(x.shape)}')
    subprocess.run(npuc_args, check=True, capture_output=True)
    refs = [np.load(p) for p in sorted((tmp / "ref").glob("*.npy"), key=lambda p: int(p.name.split("-")[0]))]

    outs = ", ".join(ttype(s) for s in shapes_out)
    ins = ", ".join(ttype(x.shape) for x in inputs)
    results = f"%r:{len(shapes_out)}" if len(shapes_out) > 1 else "%r"
    lines.append(f"    {results} = call @main({', '.join(f'%x{i}' for i in range(len(inputs)))}) : ({ins}) -> ({outs})")
    for j, s in enumerate(shapes_out):
        r = f"%r#{j}" if len(shapes_out) > 1 else "%r"
        lines.append(f"    %u{j} = tensor.cast {r} : {ttype(s)} to tensor<*xf32>")
        lines.append(f"    call @printMemrefF32(%u{j}) : (tensor<*xf32>) -> ()")
    entry = "\n".join(
        ["  func.func private @printMemrefF32(tensor<*xf32>) attributes { llvm.emit_c_interface }",
         "  func.func @entry() {", *lines, "    return", "  }", "}"])
    body = text.rstrip()
    assert body.endswith("}")
    (tmp / "run.mlir").write_text(body[:-1] + entry + "\n")
    subprocess.run([LLVM / "bin/mlir-opt", tmp / "run.mlir", f"--pass-pipeline={PIPELINE}", "-o", tmp / "run.ll.mlir"],
                   check=True)
    libs = ",".join(str(LLVM / "lib" / n) for n in ("libmlir_runner_utils.so", "libmlir_c_runner_utils.so"))
    printed = subprocess.run([LLVM / "bin/mlir-runner", tmp / "run.ll.mlir", "-e", "entry",
                              "-entry-point-result=void", f"-shared-libs={libs}"],
                             check=True, capture_output=True, text=True).stdout
    blocks = printed.split("Unranked Memref")[1:]
    worst = 0.0
    for j, (block, ref) in enumerate(zip(blocks, refs)):
        data = block.split("data =", 1)[1]
        got = np.array([float(v) for v in re.findall(r"[-+]?(?:nan|inf|[0-9.]+(?:e[-+]?[0-9]+)?)", data)],
                       dtype=np.float64)
        want = ref.astype(np.float64).ravel()
        if got.size != want.size:
            sys.exit(f"output {j}: {got.size} values printed, {want.size} expected")
        # printMemrefF32 prints 6 significant digits, so relative error is measured against
        # max(|want|, 1e-6 * max|want|) to keep near-zero elements from dominating.
        denom = np.maximum(np.abs(want), 1e-6 * max(np.abs(want).max(), 1e-30))
        rel = float(np.max(np.abs(got - want) / denom))
        worst = max(worst, rel)
        scaled = float(np.max(np.abs(got - want)) / max(np.abs(want).max(), 1e-30))
        print(f"output {j} {list(ref.shape)}: max rel err {rel:.3e}, max abs err / max abs {scaled:.3e}")
    print(f"{args.model}: worst {worst:.3e} (tol {args.tol:g})")
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
