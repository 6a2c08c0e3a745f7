#!/usr/bin/env python3
"""Numerical oracle for npuc: runs .tflite models with the LiteRT interpreter.

Needs only `ai-edge-litert` and `numpy` (the repo's `.venv`), not TensorFlow.
Rust integration tests call it as

    .venv/bin/python tools/litert_oracle.py compare A.tflite B.tflite [--seeds N] [--resolver R]
    .venv/bin/python tools/litert_oracle.py run MODEL --seed S --out DIR [--count N] [--resolver R]
    .venv/bin/python tools/litert_oracle.py info MODEL

Every subcommand prints exactly one JSON object on stdout (diagnostics go to
stderr). Exit codes: 0 = success / models identical, 1 = models differ
(`compare` only), 2 = usage or load/run error, with a line
`error: <file>: <what>` on stderr.

Inputs are random and reproducible: for seed S, `numpy.random.default_rng(S)`
draws every input in model input order: integer types uniform over the whole
range of the type, floats uniform in [-1, 1], bool uniform. Dynamic dimensions
(-1 in `shape_signature`) are resized to 1.
"""

import argparse
import json
import os
import sys

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as e:  # pragma: no cover
    print(f"error: ai_edge_litert is not importable ({e}); use the repo's .venv", file=sys.stderr)
    sys.exit(2)

try:
    from ai_edge_litert import schema_py_generated as _schema
except ImportError:  # pragma: no cover - op listing is optional
    _schema = None

RESOLVERS = {
    "default": OpResolverType.AUTO,
    "ref": OpResolverType.BUILTIN_REF,
    "nodelegate": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


class OracleError(Exception):
    """A load, usage or run error: reported as `error: <file>: <what>`, exit 2."""

    def __init__(self, path, what):
        super().__init__(f"{path}: {what}")
        self.path = path
        self.what = what


# --------------------------------------------------------------------------
# loading and describing
# --------------------------------------------------------------------------

def load(path, resolver="default", threads=1):
    if not os.path.isfile(path):
        raise OracleError(path, "no such file")
    try:
        it = Interpreter(model_path=path, num_threads=threads,
                         experimental_op_resolver_type=RESOLVERS[resolver])
        it.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - the wrapper raises ValueError/RuntimeError
        raise OracleError(path, f"cannot load: {_one_line(e)}") from None
    return it


def _one_line(e):
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _quant(d):
    q = d.get("quantization_parameters") or {}
    scales = [float(s) for s in np.asarray(q.get("scales", []), dtype=np.float64).ravel()]
    zps = [int(z) for z in np.asarray(q.get("zero_points", []), dtype=np.int64).ravel()]
    if not scales and not zps:
        return None
    return {"scales": scales, "zero_points": zps,
            "quantized_dimension": int(q.get("quantized_dimension", 0))}


def describe(d):
    return {
        "name": d["name"],
        "index": int(d["index"]),
        "shape": [int(x) for x in d["shape"]],
        "shape_signature": [int(x) for x in d.get("shape_signature", d["shape"])],
        "dtype": np.dtype(d["dtype"]).name,
        "quantization": _quant(d),
    }


def _key(desc):
    """What must agree between two models for one input/output."""
    return {k: desc[k] for k in ("shape_signature", "dtype", "quantization")}


def ops_in(path):
    """(sorted builtin op names, number of subgraphs), read from the flatbuffer."""
    if _schema is None:
        return None, None
    with open(path, "rb") as f:
        buf = f.read()
    m = _schema.Model.GetRootAsModel(buf, 0)
    names = {v: k for k, v in vars(_schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = set()
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            name = "CUSTOM:" + (oc.CustomCode() or b"?").decode(errors="replace")
        ops.add(name)
    return sorted(ops), m.SubgraphsLength()


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------

def concrete_shape(desc):
    sig = desc["shape_signature"] or desc["shape"]
    return [1 if x < 0 else x for x in sig]


def random_inputs(descs, seed):
    rng = np.random.default_rng(seed)
    out = []
    for d in descs:
        shape = concrete_shape(d)
        dt = np.dtype(d["dtype"])
        if dt == np.bool_:
            a = rng.integers(0, 2, size=shape, dtype=np.int8).astype(np.bool_)
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
        elif np.issubdtype(dt, np.floating):
            a = rng.uniform(-1.0, 1.0, size=shape).astype(dt)
        elif np.issubdtype(dt, np.complexfloating):
            a = (rng.uniform(-1.0, 1.0, size=shape) + 1j * rng.uniform(-1.0, 1.0, size=shape)).astype(dt)
        else:
            raise ValueError(f"input {d['name']!r}: unsupported dtype {dt.name}")
        out.append(np.asarray(a, dtype=dt).reshape(shape))
    return out


class Model:
    def __init__(self, path, resolver, threads):
        self.path = path
        self.it = load(path, resolver, threads)
        self.inputs = [describe(d) for d in self.it.get_input_details()]
        self.outputs = [describe(d) for d in self.it.get_output_details()]
        # Names from the (single) SignatureDef, if any: tensor names such as
        # "PartitionedCall:0" say little, signature names ("probs") do.
        names = {"inputs": {}, "outputs": {}}
        try:
            full = self.it._get_full_signature_list()  # {key: {inputs: {name: index}, ...}}
        except Exception:  # noqa: BLE001 - optional information
            full = {}
        if len(full) == 1:
            (sd,) = full.values()
            for kind in names:
                names[kind] = {int(i): n for n, i in sd.get(kind, {}).items()}
        for d in self.inputs:
            d["signature_name"] = names["inputs"].get(d["index"])
        for d in self.outputs:
            d["signature_name"] = names["outputs"].get(d["index"])
        self._shapes = None

    def run(self, arrays):
        it = self.it
        try:
            shapes = [tuple(a.shape) for a in arrays]
            if shapes != self._shapes:
                for d, a in zip(self.inputs, arrays):
                    it.resize_tensor_input(d["index"], list(a.shape), strict=False)
                it.allocate_tensors()
                self._shapes = shapes
            for d, a in zip(self.inputs, arrays):
                it.set_tensor(d["index"], a)
            it.invoke()
            return [np.array(it.get_tensor(d["index"]), copy=True) for d in self.outputs]
        except OracleError:
            raise
        except Exception as e:  # noqa: BLE001
            raise OracleError(self.path, f"cannot run: {_one_line(e)}") from None


def _finite_or_none(x):
    x = float(x)
    return x if np.isfinite(x) else None


def diff(a, b):
    """Describes how two output arrays differ, or None if bit-identical."""
    if a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes():
        return None
    if a.shape != b.shape or a.dtype != b.dtype:
        return {"max_abs_diff": None,
                "reason": f"shape/dtype {list(a.shape)} {a.dtype.name} vs {list(b.shape)} {b.dtype.name}"}
    if a.dtype == np.bool_:
        ne = a != b
        return {"max_abs_diff": 1.0 if ne.any() else 0.0, "mismatched_elements": int(ne.sum()),
                "first_index": [int(i) for i in np.argwhere(ne)[0]] if ne.any() else None}
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    if np.issubdtype(a.dtype, np.floating):
        # bitwise difference per element (also catches -0.0 vs 0.0 and NaN payloads)
        width = a.dtype.itemsize
        view = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(width)
        ne = (a.view(view) != b.view(view)) if view else (fa != fb)
        nan_a, nan_b = np.isnan(fa), np.isnan(fb)
        d = np.abs(fa - fb)
        d[nan_a & nan_b] = 0.0
        mad = np.nanmax(np.where(nan_a ^ nan_b, np.inf, d)) if d.size else 0.0
    else:
        ne = a != b
        mad = np.max(np.abs(fa - fb)) if a.size else 0.0
    idx = np.argwhere(ne)
    r = {"max_abs_diff": _finite_or_none(mad), "mismatched_elements": int(ne.sum()),
         "first_index": [int(i) for i in idx[0]] if len(idx) else None}
    if not np.isfinite(mad):
        r["reason"] = "non-finite difference (NaN or inf on one side)"
    return r


# --------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------

def cmd_compare(args):
    a = Model(args.model_a, args.resolver, args.threads)
    b = Model(args.model_b, args.resolver, args.threads)
    result = {
        "identical": True,
        "seeds": args.seeds,
        "resolver": args.resolver,
        "model_a": args.model_a,
        "model_b": args.model_b,
        "inputs": [d["name"] for d in a.inputs],
        "outputs": [d["name"] for d in a.outputs],
        "outputs_b": [d["name"] for d in b.outputs],
        "output_signature_names": [d["signature_name"] for d in a.outputs],
        "signature_mismatches": [],
        "mismatches": [],
    }
    sig = result["signature_mismatches"]
    for kind, xs, ys in (("input", a.inputs, b.inputs), ("output", a.outputs, b.outputs)):
        if len(xs) != len(ys):
            sig.append({"what": f"{kind} count", "a": len(xs), "b": len(ys)})
            continue
        for i, (x, y) in enumerate(zip(xs, ys)):
            if _key(x) != _key(y):
                sig.append({"what": f"{kind} {i}", "a": x, "b": y})
    if sig:
        result["identical"] = False
        return result, 1

    for seed in range(args.seeds):
        feeds = random_inputs(a.inputs, seed)
        ra, rb = a.run(feeds), b.run(feeds)
        for i, (oa, ob) in enumerate(zip(ra, rb)):
            d = diff(oa, ob)
            if d is not None:
                result["identical"] = False
                m = {"seed": seed, "output": a.outputs[i]["name"], "output_index": i,
                     "signature_name": a.outputs[i]["signature_name"]}
                m.update(d)
                result["mismatches"].append(m)
    return result, 0 if result["identical"] else 1


def _run_one(m, args, seed, out):
    feeds = random_inputs(m.inputs, seed)
    outs = m.run(feeds)
    try:
        os.makedirs(out, exist_ok=True)
        files = {"inputs": [], "outputs": []}
        for i, a in enumerate(feeds):
            p = os.path.join(out, f"in_{i}.npy")
            np.save(p, a)
            files["inputs"].append(p)
        for i, a in enumerate(outs):
            p = os.path.join(out, f"out_{i}.npy")
            np.save(p, a)
            files["outputs"].append(p)
    except OSError as e:
        raise OracleError(out, f"cannot write: {_one_line(e)}") from None
    return {
        "seed": seed, "dir": out,
        "inputs": [dict(name=d["name"], shape=list(a.shape), dtype=a.dtype.name, file=f)
                   for d, a, f in zip(m.inputs, feeds, files["inputs"])],
        "outputs": [dict(name=d["name"], shape=list(a.shape), dtype=a.dtype.name, file=f)
                    for d, a, f in zip(m.outputs, outs, files["outputs"])],
    }


def cmd_run(args):
    m = Model(args.model, args.resolver, args.threads)
    if args.count == 1:
        res = _run_one(m, args, args.seed, args.out)
        res.update({"model": args.model, "resolver": args.resolver})
        return res, 0
    # Several seeds in one process (loading LiteRT costs more than running a small model):
    # one sub-folder per seed.
    runs = [_run_one(m, args, s, os.path.join(args.out, f"seed_{s}"))
            for s in range(args.seed, args.seed + args.count)]
    return {"model": args.model, "resolver": args.resolver, "runs": runs}, 0


def cmd_info(args):
    m = Model(args.model, args.resolver, args.threads)
    try:
        sigs = m.it.get_signature_list()
    except Exception:  # noqa: BLE001
        sigs = {}
    ops, nsub = ops_in(args.model)
    return {
        "model": args.model,
        "inputs": m.inputs,
        "outputs": m.outputs,
        "signatures": [{"key": k, "inputs": list(v.get("inputs", [])),
                        "outputs": list(v.get("outputs", []))} for k, v in sigs.items()],
        "subgraphs": nsub,
        "ops": ops,
    }, 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv=None):
    p = _Parser(prog="litert_oracle.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("--resolver", choices=sorted(RESOLVERS), default="default",
                        help="default: builtin kernels + default delegates (XNNPACK); "
                             "ref: reference kernels; nodelegate: builtin kernels without delegates")
        sp.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")

    c = sub.add_parser("compare", help="run two models on the same random inputs, compare bit for bit")
    c.add_argument("model_a")
    c.add_argument("model_b")
    c.add_argument("--seeds", type=int, default=10, help="number of seeds 0..N-1 (default 10)")
    common(c)
    c.set_defaults(fn=cmd_compare)

    r = sub.add_parser("run", help="run once and write in_<i>.npy / out_<i>.npy")
    r.add_argument("model")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--count", type=int, default=1,
                   help="run seeds SEED..SEED+COUNT-1, each into OUT/seed_<S>/ (default 1: into OUT)")
    common(r)
    r.set_defaults(fn=cmd_run)

    i = sub.add_parser("info", help="print inputs, outputs, signatures, ops")
    i.add_argument("model")
    common(i)
    i.set_defaults(fn=cmd_info)

    args = p.parse_args(argv)
    if getattr(args, "seeds", 1) < 1:
        p.error("--seeds must be at least 1")
    if getattr(args, "count", 1) < 1:
        p.error("--count must be at least 1")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    try:
        result, code = args.fn(args)
    except OracleError as e:
        print(f"error: {e.path}: {e.what}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {getattr(args, 'model', getattr(args, 'model_a', '?'))}: {e}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=None, sort_keys=False, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
