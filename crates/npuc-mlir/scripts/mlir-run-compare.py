#!/usr/bin/env python3
"""Runs a model's TOSA export through MLIR's own CPU path and compares with npuc's interpreter.

The exported TOSA goes TOSA -> linalg -> loops -> LLVM with mlir-opt-22 and runs under
mlir-runner-22; a generated `@entry` feeds seeded inputs (as dense hex constants) to
`@main` and prints every output exactly: f32 results as their bit patterns (bitcast to
i32), f16 widened to f32 first, integer results sign-extended to i32, all through
printMemrefI32, so no digits are lost to printing. The same inputs go to `npuc run`.

Float outputs: prints, per output, the largest element-wise relative error (against
max(|want|, 1e-6 * max|want|)) and the norm-wise one (max |got - want| / max |want|),
and fails if the norm-wise error exceeds --tol: element-wise, an element that cancels to
almost zero in both runs gets an arbitrarily large relative error from f32 rounding
alone, so the check is relative to the output's scale. Integer outputs (int8 models,
arg_max): prints how many elements differ and by how much at most, and fails if any
differs by more than --int-tol (0: bit-exact).

usage: mlir-run-compare.py --npuc PATH MODEL [--seed N] [--tol 1e-5] [--int-tol 0]
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

LLVM = pathlib.Path("/usr/lib/llvm-22")
# tosa-optional-decompositions rewrites transpose_conv2d into conv2d, which tosa-to-linalg
# does not lower by itself.
PIPELINE = (
    "builtin.module(func.func(tosa-optional-decompositions,tosa-to-linalg-named,tosa-to-linalg,"
    "tosa-to-arith{include-apply-rescale},tosa-to-tensor),"
    "one-shot-bufferize{bufferize-function-boundaries},"
    "func.func(convert-linalg-to-loops,lower-affine,convert-scf-to-cf),"
    "expand-strided-metadata,lower-affine,convert-to-llvm,reconcile-unrealized-casts)"
)
NUMPY = {"f32": np.float32, "f16": np.float16, "i8": np.int8, "i16": np.int16, "i32": np.int32}
TENSOR = re.compile(r"tensor<((?:\d+x)*)(f32|f16|i8|i16|i32|i64|i1)>")


def types(text):
    """(shape, element type) of each tensor type in a signature fragment."""
    return [([int(d) for d in dims.split("x") if d], et) for dims, et in TENSOR.findall(text)]


def ttype(shape, et):
    return "tensor<" + "".join(f"{d}x" for d in shape) + et + ">"


def printed_as_i32(j, value, shape, et):
    """MLIR lines turning result `value` into an i32 tensor %p{j} whose elements print exactly
    (a linalg.map, which bufferizes, where arith on tensors would not)."""
    body = {
        "f32": ["%b = arith.bitcast %in : f32 to i32"],
        "f16": ["%w = arith.extf %in : f16 to f32", "%b = arith.bitcast %w : f32 to i32"],
        "i8": ["%b = arith.extsi %in : i8 to i32"],
        "i16": ["%b = arith.extsi %in : i16 to i32"],
        "i1": ["%b = arith.extui %in : i1 to i32"],
    }.get(et)
    if body is None:
        sys.exit(f"output {j}: cannot print {et}")
    i = ttype(shape, "i32")
    return [f"    %e{j} = tensor.empty() : {i}",
            f"    %p{j} = linalg.map ins({value} : {ttype(shape, et)}) outs(%e{j} : {i})",
            f"      (%in: {et}, %init: i32) {{",
            *(f"        {line}" for line in body),
            "        linalg.yield %b : i32",
            "      }"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--npuc", required=True, help="an npuc built with --features mlir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--int-tol", type=int, default=0)
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mlir-run-"))
    text = subprocess.run([args.npuc, "convert", args.model, "-o", "-", "--emit", "mlir"],
                          check=True, capture_output=True, text=True).stdout
    sig = re.search(r"func\.func @main\((.*?)\) -> \(?(.*?)\)? (?:attributes .*?)?\{", text)
    if sig is None:
        sys.exit("no @main signature in the export")
    ins, outs = types(sig.group(1)), types(sig.group(2))

    rng = np.random.default_rng(args.seed)
    inputs = []
    for shape, et in ins:
        if et not in NUMPY:
            sys.exit(f"cannot feed a {et} input")
        dt = NUMPY[et]
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            inputs.append(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt))
        else:
            inputs.append(rng.uniform(-1, 1, size=shape).astype(dt))
    npuc_args = [args.npuc, "run", args.model, "-o", str(tmp / "ref")]
    lines = []
    for i, (x, (shape, et)) in enumerate(zip(inputs, ins)):
        np.save(tmp / f"in{i}.npy", x)
        npuc_args += ["--input", f"{i}={tmp / f'in{i}.npy'}"]
        lines.append(f'    %x{i} = arith.constant dense<"0x{x.tobytes().hex().upper()}"> : {ttype(shape, et)}')
    subprocess.run(npuc_args, check=True, capture_output=True)
    refs = [np.load(p) for p in sorted((tmp / "ref").glob("*.npy"), key=lambda p: int(p.name.split("-")[0]))]

    out_types = ", ".join(ttype(s, et) for s, et in outs)
    in_types = ", ".join(ttype(s, et) for s, et in ins)
    results = f"%r:{len(outs)}" if len(outs) > 1 else "%r"
    lines.append(f"    {results} = call @main({', '.join(f'%x{i}' for i in range(len(inputs)))}) : ({in_types}) -> ({out_types})")
    for j, (s, et) in enumerate(outs):
        r = f"%r#{j}" if len(outs) > 1 else "%r"
        if et == "i32":
            lines.append(f"    %u{j} = tensor.cast {r} : {ttype(s, 'i32')} to tensor<*xi32>")
        else:
            lines += printed_as_i32(j, r, s, et)
            lines.append(f"    %u{j} = tensor.cast %p{j} : {ttype(s, 'i32')} to tensor<*xi32>")
        lines.append(f"    call @printMemrefI32(%u{j}) : (tensor<*xi32>) -> ()")
    entry = "\n".join(
        ["  func.func private @printMemrefI32(tensor<*xi32>) attributes { llvm.emit_c_interface }",
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
    if len(blocks) != len(refs) or len(refs) != len(outs):
        sys.exit(f"{len(blocks)} outputs printed, {len(refs)} from npuc, {len(outs)} in the signature")
    failed = False
    for j, (block, ref, (shape, et)) in enumerate(zip(blocks, refs, outs)):
        bits = np.array([int(v) for v in re.findall(r"-?\d+", block.split("data =", 1)[1])], dtype=np.int64)
        if bits.size != ref.size:
            sys.exit(f"output {j}: {bits.size} values printed, {ref.size} expected")
        if et in ("f32", "f16"):
            got = bits.astype(np.int32).view(np.float32).astype(np.float64)
            want = ref.astype(np.float64).ravel()
            denom = np.maximum(np.abs(want), 1e-6 * max(np.abs(want).max(), 1e-30))
            rel = float(np.max(np.abs(got - want) / denom))
            scaled = float(np.max(np.abs(got - want)) / max(np.abs(want).max(), 1e-30))
            bad = not scaled <= args.tol
            print(f"output {j} {list(ref.shape)} {et}: max abs err / max abs {scaled:.3e}, max elementwise rel err {rel:.3e}"
                  f"{'  FAIL' if bad else ''}")
        else:
            want = ref.astype(np.int64).ravel()
            diff = np.abs(bits - want)
            bad = int(diff.max()) > args.int_tol
            print(f"output {j} {list(ref.shape)} {et}: {int((diff > 0).sum())} of {diff.size} elements differ,"
                  f" by at most {int(diff.max())}{'  FAIL' if bad else ''}")
        failed |= bad
    print(f"{args.model}: {'FAIL' if failed else 'ok'} (tol {args.tol:g}, int tol {args.int_tol})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
