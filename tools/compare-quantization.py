#!/usr/bin/env python3
"""npuc's post-training int8 quantization beside the official TensorFlow converter's.

For every float fixture tools/fixtures/models/<name>_f32.tflite this script

  1. rebuilds the fixture's model from tools/fixtures/make_fixtures.py (seeded, so it
     reproduces the committed float file; checked below) and converts it with
     `tf.lite.TFLiteConverter`: optimizations=[DEFAULT], representative_dataset = the
     calibration samples, supported_ops=[TFLITE_BUILTINS_INT8], int8 inputs and outputs
     (the fixture's own recipe, e.g. EXPERIMENTAL_SPARSITY for zoo_d/zoo_e, is kept);
  2. runs `npuc opt <name>_f32.tflite --passes='canonicalize,quantize{calibration=DIR,...}'`
     on the committed float file with the SAME calibration samples written as .npy
     (npuc's default io=int8, so both sides have int8 inputs and outputs); npuc calibrates
     at the model's static input shapes, so a sample longer along a dimension the model
     declares dynamic (zoo_c's sequence) is given to npuc as one sample per step;
  3. runs the committed float model, the converter's int8 model and npuc's int8 model on a
     different, seeded evaluation set in one runtime (LiteRT's `ai_edge_litert` interpreter
     from the oracle venv .venv, builtin kernels without delegates by default), quantizes
     the float inputs and dequantizes the int8 outputs with each model's own scale and zero
     point, and reports SQNR = 10*log10(sum ref^2 / sum (ref - q)^2) over all samples, per
     output; the worst float output is the fixture's figure.

Run it with the TensorFlow venv (the converter needs TensorFlow); the LiteRT part runs in a
child process under the oracle venv, so both columns come from the same interpreter:

    .venv-tf/bin/python tools/compare-quantization.py --npuc target/release/npuc

Exit codes: 0 the comparison ran (whether or not npuc reached the converter's SQNR);
1 a step could not run (an `error: <fixture>: <step>: <what>` line names it); 2 usage.
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "tools" / "fixtures" / "models"
ORACLE_PYTHON = ROOT / ".venv" / "bin" / "python"
# Seeds: calibration uses make_fixtures.py's own seed for the fixture (crc32 of its name),
# evaluation a different stream derived from it, so the two sets never coincide.
EVAL_SEED_OFFSET = 1_000_003
INT_TYPES = ("int8", "uint8", "int16")


class StepError(Exception):
    """A step that could not run: reported as `error: <fixture>: <step>: <what>`, exit 1."""

    def __init__(self, fixture, step, what):
        super().__init__(f"{fixture}: {step}: {what}")
        self.fixture, self.step, self.what = fixture, step, what


def one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text[:limit] if text else "?"


# --------------------------------------------------------------------------
# evaluation (runs under the oracle venv: ai_edge_litert + numpy, no TensorFlow)
# --------------------------------------------------------------------------

def _order(model, names, fixture, label):
    """For each model input, the index of the sample array (in the fixture spec's order)
    it takes: by SignatureDef name (inputs of a converted model are not in signature
    order), else by `serving_default_<name>:0` tensor name, else the only one."""
    order = []
    for d in model.inputs:
        if names is None or len(names) == 1:
            if len(model.inputs) != 1:
                raise StepError(fixture, label, f"{len(model.inputs)} inputs, the fixture has 1")
            return [0]
        if d.get("signature_name") in names:
            order.append(names.index(d["signature_name"]))
            continue
        hit = [i for i, n in enumerate(names) if d["name"] in (n, f"serving_default_{n}:0")]
        if len(hit) != 1:
            raise StepError(fixture, label, f"cannot match input {d['name']!r} to one of {names}")
        order.append(hit[0])
    if sorted(order) != list(range(len(names))):
        raise StepError(fixture, label, f"inputs do not cover the fixture's {names}")
    return order


def _scale_zp(d, fixture, label):
    q = d.get("quantization")
    if not q or not q["scales"]:
        raise StepError(fixture, label, f"{d['dtype']} tensor {d['name']!r} has no quantization")
    if len(q["scales"]) != 1:
        raise StepError(fixture, label, f"tensor {d['name']!r} is quantized per axis")
    return q["scales"][0], q["zero_points"][0] if q["zero_points"] else 0


def _feed(model, order, sample, fixture, label):
    """The sample arrays cast or quantized to each model input's type."""
    feeds = []
    for d, i in zip(model.inputs, order):
        x = np.asarray(sample[i])
        dt = np.dtype(d["dtype"])
        if dt.name in INT_TYPES and x.dtype.kind == "f":
            scale, zp = _scale_zp(d, fixture, label)
            info = np.iinfo(dt)
            x = np.clip(np.round(x.astype(np.float64) / scale) + zp, info.min, info.max)
        feeds.append(np.asarray(x, dtype=dt).reshape(x.shape))
    return feeds


def _as_real(d, a, fixture, label):
    """An output as float64, dequantized with the model's own scale / zero point."""
    if d["dtype"] in INT_TYPES and d.get("quantization"):
        scale, zp = _scale_zp(d, fixture, label)
        return (a.astype(np.float64) - zp) * scale
    return a.astype(np.float64)


def _out_map(ref, model, fixture, label):
    """For each output of the reference model, the matching output index of `model`."""
    mapping = []
    for r in ref.outputs:
        hit = [j for j, d in enumerate(model.outputs)
               if r.get("signature_name") and d.get("signature_name") == r["signature_name"]]
        if not hit:
            hit = [j for j, d in enumerate(model.outputs) if d["name"] == r["name"]]
        if not hit and len(ref.outputs) == len(model.outputs) == 1:
            hit = [0]
        if len(hit) != 1:
            raise StepError(fixture, label, f"no output matches {r.get('signature_name') or r['name']!r}")
        mapping.append(hit[0])
    return mapping


def evaluate_fixture(oracle, job, resolver, threads):
    fx = job["name"]
    samples = [[np.load(p) for p in paths] for paths in job["eval_inputs"]]
    names = job["input_names"]

    def load(label, path):
        try:
            return oracle.Model(path, resolver, threads)
        except oracle.OracleError as e:
            raise StepError(fx, f"litert load {label}", e.what) from None

    def run(label, model, order, sample):
        try:
            return model.run(_feed(model, order, sample, fx, label))
        except oracle.OracleError as e:
            raise StepError(fx, f"litert run {label}", e.what) from None

    ref = load("float", job["float"])
    ref_order = _order(ref, names, fx, "float")
    refs = [run("float", ref, ref_order, s) for s in samples]
    result = {"name": fx, "outputs": [d.get("signature_name") or d["name"] for d in ref.outputs]}

    if job.get("rebuilt"):
        reb = load("rebuilt float", job["rebuilt"])
        order, omap = _order(reb, names, fx, "rebuilt float"), _out_map(ref, reb, fx, "rebuilt float")
        worst = 0.0
        for s, r in zip(samples, refs):
            outs = run("rebuilt float", reb, order, s)
            for k, j in enumerate(omap):
                a, b = r[k], outs[j]
                if a.shape != b.shape or a.dtype != b.dtype:
                    worst = math.inf
                elif a.tobytes() != b.tobytes():
                    worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
        result["rebuilt_max_abs_diff"] = worst if math.isfinite(worst) else None

    result["quantized"], result["errors"] = {}, []
    for side, path in job["quantized"].items():
        # One side failing in LiteRT leaves the other side's figure standing.
        try:
            result["quantized"][side] = score(load, run, ref, refs, names, samples, fx, side, path)
        except StepError as e:
            result["quantized"][side] = {"error": f"{e.step}: {e.what}"}
            result["errors"].append({"fixture": e.fixture, "step": e.step, "what": e.what})
    return result


def score(load, run, ref, refs, names, samples, fx, side, path):
    """SQNR of one quantized model against the float reference outputs `refs`, per output."""
    label = f"{side} int8"
    m = load(label, path)
    order, omap = _order(m, names, fx, label), _out_map(ref, m, fx, label)
    io = {"inputs": [d["dtype"] for d in m.inputs], "outputs": [d["dtype"] for d in m.outputs]}
    outputs = [d.get("signature_name") or d["name"] for d in ref.outputs]
    sig, noise, equal, count = (np.zeros(len(ref.outputs)) for _ in range(4))
    for s, r in zip(samples, refs):
        outs = run(label, m, order, s)
        for k, j in enumerate(omap):
            q = _as_real(m.outputs[j], outs[j], fx, label)
            if q.shape != r[k].shape:
                raise StepError(fx, label, f"output {outputs[k]!r} has shape {list(q.shape)}, "
                                           f"the float model's {list(r[k].shape)}")
            ref_k = r[k].astype(np.float64)
            sig[k] += float(np.sum(ref_k * ref_k))
            noise[k] += float(np.sum((ref_k - q) ** 2))
            equal[k] += float(np.sum(ref_k == q))
            count[k] += ref_k.size
    per_output = []
    for k, d in enumerate(ref.outputs):
        entry = {"output": outputs[k]}
        if np.dtype(d["dtype"]).kind == "f":
            # noise 0 means bit-exact; an all-zero reference with noise gives -inf.
            entry["sqnr_db"] = (math.inf if noise[k] == 0 else
                                (-math.inf if sig[k] == 0 else 10.0 * math.log10(sig[k] / noise[k])))
        else:
            # Integer outputs (ARG_MAX indices) are labels, not signals: agreement rate.
            entry["agreement"] = float(equal[k] / count[k]) if count[k] else None
        per_output.append(entry)
    scored = [e for e in per_output if "sqnr_db" in e]
    worst = min(scored, key=lambda e: e["sqnr_db"]) if scored else None
    return {"io": io, "per_output": per_output, "sqnr_db": worst["sqnr_db"] if worst else None,
            "worst_output": worst["output"] if worst else None}


def evaluate_main(job_path):
    """Child-process entry: reads the job JSON, prints one JSON object on stdout."""
    sys.path.insert(0, str(ROOT / "tools"))
    import litert_oracle as oracle  # noqa: E402 - lives next to this script, needs ai_edge_litert

    with open(job_path) as f:
        job = json.load(f)
    results, errors = [], []
    for fx in job["fixtures"]:
        try:
            res = evaluate_fixture(oracle, fx, job["resolver"], job["threads"])
            errors.extend(res.pop("errors"))
            results.append(res)
        except StepError as e:
            errors.append({"fixture": e.fixture, "step": e.step, "what": e.what})
    out = {"runtime": f"ai_edge_litert {_version('ai-edge-litert')}", "resolver": job["resolver"],
           "results": results, "errors": errors}
    json.dump(_jsonable(out), sys.stdout)
    sys.stdout.write("\n")
    return 0


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001 - informational only
        return "?"


def _jsonable(x):
    """JSON has no inf: +-inf become the strings "inf" / "-inf" (bit-exact / all-zero)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else None)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _unjson(x):
    return {"inf": math.inf, "-inf": -math.inf}.get(x, x) if isinstance(x, str) else x


# --------------------------------------------------------------------------
# the converter side and the data (runs under .venv-tf)
# --------------------------------------------------------------------------

def import_fixtures():
    """make_fixtures.py as a module (sets TF's determinism environment before importing it)."""
    sys.path.insert(0, str(ROOT / "tools" / "fixtures"))
    with contextlib.redirect_stdout(sys.stderr):
        import make_fixtures  # noqa: E402
        import tensorflow as tf  # noqa: E402
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    return make_fixtures, tf


def draw(spec, seed, count):
    """`count` samples drawn exactly as make_fixtures.rep_dataset draws them (same sampler,
    same per-input order, same generator), each a list in the spec's input order."""
    rng = np.random.default_rng(seed)
    return [[np.asarray(spec.calib(rng, shape, dt)) for shape, dt in spec.inputs] for _ in range(count)]


def convert_int8(tf, spec, source, calib):
    """The converter's strict full-integer model (int8 I/O) from the calibration samples."""
    c = source.converter()
    c.optimizations = [tf.lite.Optimize.DEFAULT] + (
        [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if spec.sparse else [])
    names = source.input_names

    def rep():
        for sample in calib:
            yield dict(zip(names, sample)) if names else list(sample)
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int8
    c.inference_output_type = tf.int8
    return c.convert()


def signature_tensor_names(mf, path):
    """{signature input name: tensor name} of a .tflite's first SignatureDef."""
    buf = Path(path).read_bytes()
    m = mf.tfl_schema.Model.GetRootAsModel(buf, 0)
    out = {}
    if m.SignatureDefsLength():
        sd, sg = m.SignatureDefs(0), m.Subgraphs(0)
        for i in range(sd.InputsLength()):
            t = sd.Inputs(i)
            out[t.Name().decode()] = sg.Tensors(t.TensorIndex()).Name().decode()
    return out


def static_input_shapes(mf, path):
    """{tensor name: static shape} of the inputs of a .tflite's main subgraph."""
    buf = Path(path).read_bytes()
    sg = mf.tfl_schema.Model.GetRootAsModel(buf, 0).Subgraphs(0)
    out = {}
    for i in range(sg.InputsLength()):
        t = sg.Tensors(sg.Inputs(i))
        out[t.Name().decode()] = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    return out


def at_static_shapes(samples, shapes):
    """npuc calibrates at a model's static input shapes. A sample longer than the static
    shape along dimensions the model declares dynamic (zoo_c's sequence: static 1, signature
    -1) becomes one sample per step along them, the other inputs repeated: the same values,
    in pieces of the static shape. Samples that already fit are kept as they are."""
    out = []
    for sample in samples:
        pieces = [list(sample)]
        for k, x in enumerate(sample):
            want = shapes[k]
            if want is None or tuple(x.shape) == tuple(want):
                continue
            if len(want) != x.ndim or any(w not in (1, d) for w, d in zip(want, x.shape)):
                raise ValueError(f"sample input {k} has shape {list(x.shape)}, the model {list(want)}")
            idx = [range(d) if w == 1 and d != 1 else [slice(None)] for w, d in zip(want, x.shape)]
            split = []
            for p in pieces:
                for sel in np.ndindex(*[len(r) if isinstance(r, range) else 1 for r in idx]):
                    key = tuple(slice(i, i + 1) if isinstance(r, range) else slice(None) for i, r in zip(sel, idx))
                    q = list(p)
                    q[k] = x[key]
                    split.append(q)
            pieces = split
        out.extend(pieces)
    return out


def write_samples(samples, folder, input_names, tensor_names):
    """Writes one .npy per sample; with several inputs one sub-folder per input, named by
    the input's tensor name (npuc's calibration layout). Returns per-sample path lists."""
    paths = [[] for _ in samples]
    multi = len(samples[0]) > 1 if samples else False
    for k in range(len(samples[0]) if samples else 0):
        sub = folder
        if multi:
            sub = folder / tensor_names[input_names[k]]
        sub.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(samples):
            p = sub / f"{i:04d}.npy"
            np.save(p, s[k])
            paths[i].append(str(p))
    return paths


def float_ops(mf, buf):
    """Ops of a quantized model that still compute in float (make_fixtures' summary); None
    when the flatbuffer cannot be read (LiteRT's load then reports the problem)."""
    try:
        return mf.model_summary(buf)[4]
    except Exception:  # noqa: BLE001 - flatbuffers raises struct.error, IndexError, ...
        return None


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# the npuc side
# --------------------------------------------------------------------------

def build_npuc():
    """Builds the release driver (honours CARGO_TARGET_DIR) and returns its path."""
    cmd = ["cargo", "build", "--quiet", "--release", "-p", "npuc"]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        raise StepError("-", "cargo build --release -p npuc", f"exit {r.returncode}")
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "npuc"


def npuc_ready(npuc):
    """None if `npuc opt --help` lists a quantize pass with a `calibration` option, else why not."""
    try:
        r = subprocess.run([str(npuc), "opt", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {npuc}: {one_line(e)}"
    lines = r.stdout.splitlines()
    at = [i for i, l in enumerate(lines) if l.strip().startswith("quantize ")]
    if not at:
        return "`npuc opt --help` lists no quantize pass"
    following = []
    for l in lines[at[0] + 1:]:
        if not l.startswith("      "):
            break
        following.append(l.strip())
    if not any(l.startswith("calibration") for l in following):
        return "npuc's quantize pass has no `calibration` option yet (still the stub)"
    return None


def run_npuc(npuc, fixture, float_path, calib_dir, out, args):
    """(path, None) when npuc wrote a model; (None, reason) when npuc declined the model
    (the fixture is skipped on npuc's side); raises StepError on anything else."""
    opts = [f"calibration={calib_dir}"]
    if args.observer:
        opts.append(f"observer={args.observer}")
    if args.activations:
        opts.append(f"activations={args.activations}")
    passes = "canonicalize,quantize{" + ",".join(opts) + "}"
    cmd = [str(npuc), "opt", str(float_path), f"--passes={passes}", "-o", str(out)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.npuc_timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StepError(fixture, "npuc opt", one_line(e)) from None
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    why = one_line(err[0] if err else (r.stderr.strip().splitlines() or ["(no message)"])[-1])
    # npuc exits 2 on input it rejects, e.g. "pass 'quantize' cannot handle graph" for an
    # op it cannot quantize (a custom op, ...): the fixture is skipped with that reason. A
    # usage error (--passes) or a calibration-data complaint is this script's fault, and
    # exit 1 npuc's: both are errors.
    declined = r.returncode == 2 and "--passes" not in why and "calibration" not in why
    if declined:
        return None, f"npuc: {why.removeprefix('error: ')}"
    if r.returncode != 0 or not out.is_file():
        raise StepError(fixture, "npuc opt", f"exit {r.returncode}: {why} ({' '.join(cmd)})")
    return out, None


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv, all_names):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--npuc", type=Path, help="npuc binary (default: cargo build --release -p npuc)")
    ap.add_argument("--no-npuc", action="store_true",
                    help="converter column only (npuc not run; the npuc column says so)")
    ap.add_argument("--fixtures", help="comma-separated fixture names (default: every *_f32 fixture: "
                    + ",".join(all_names) + ")")
    ap.add_argument("--observer", choices=["minmax", "percentile", "mse"],
                    help="passed to npuc's quantize pass (default: the pass's own default)")
    ap.add_argument("--activations", choices=["int8", "int16"],
                    help="passed to npuc's quantize pass (default: the pass's own default, int8)")
    ap.add_argument("--calib-samples", type=int, default=64, help="calibration samples (default 64)")
    ap.add_argument("--eval-samples", type=int, default=32, help="evaluation samples (default 32)")
    ap.add_argument("--resolver", choices=["default", "ref", "nodelegate"], default="nodelegate",
                    help="LiteRT kernels for all three models (default nodelegate: builtin kernels "
                         "without XNNPACK; the converter's zoo_e int8 model fails under XNNPACK)")
    ap.add_argument("--threads", type=int, default=1, help="LiteRT threads (default 1)")
    ap.add_argument("--litert-python", type=Path, default=ORACLE_PYTHON,
                    help="python with ai_edge_litert that runs the evaluation (default .venv/bin/python)")
    ap.add_argument("--npuc-timeout", type=float, default=1800, help="seconds per npuc run (default 1800)")
    ap.add_argument("--dir", type=Path, help="keep models and data here (default: a temporary directory)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--verbose", action="store_true", help="show TensorFlow's converter output on stderr")
    ap.add_argument("--evaluate-job", help=argparse.SUPPRESS)  # child-process mode
    args = ap.parse_args(argv)
    if args.calib_samples < 1 or args.eval_samples < 1 or args.threads < 1:
        ap.error("--calib-samples, --eval-samples and --threads must be at least 1")
    return args, ap


def fmt_db(x):
    if x is None:
        return "-"
    if x == math.inf:
        return "exact"
    return f"{x:.2f}"


def print_table(report):
    rows = [("fixture", "converter dB", "npuc dB", "npuc-conv dB", "npuc >= conv?", "note")]
    for r in report["fixtures"]:
        c, n = r["converter"], r["npuc"]
        cs, ns = c.get("sqnr_db"), n.get("sqnr_db")
        diff = "-"
        verdict = "-"
        if cs is not None and ns is not None and not c.get("error") and not n.get("error"):
            d = ns - cs if not (math.isinf(ns) and math.isinf(cs)) else 0.0
            diff = "+inf" if d == math.inf else ("-inf" if d == -math.inf else f"{d:+.2f}")
            verdict = "yes" if ns >= cs else "NO"
        notes = []
        for side, v in (("converter", c), ("npuc", n)):
            if v.get("error"):
                notes.append(f"{side} ERROR: {v['error']}")
            elif v.get("skipped"):
                notes.append(f"{side} skipped: {v['skipped']}")
            elif v.get("worst_output") and len(r.get("outputs", [])) > 1:
                notes.append(f"{side} worst: {v['worst_output']}")
            if v.get("float_ops"):
                notes.append(f"{side} float compute: {','.join(v['float_ops'])}")
        if r.get("rebuild") and r["rebuild"] != "identical bytes":
            notes.append(f"rebuild: {r['rebuild']}")
        rows.append((r["name"], fmt_db(cs), fmt_db(ns), diff, verdict, "; ".join(notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    same = [r["name"] for r in report["fixtures"] if r.get("rebuild") == "identical bytes"]
    print(f"\nrebuilt float models byte-identical to the committed *_f32.tflite: {len(same)} of "
          f"{len(report['fixtures'])} (others: see note)")
    print(f"runtime: {report['runtime']} (resolver {report['resolver']}), "
          f"{report['calib_samples']} calibration / {report['eval_samples']} evaluation samples, "
          f"int8 I/O on both sides; npuc pipeline: {report['npuc_passes']}")
    for r in report["fixtures"]:
        for side in ("converter", "npuc"):
            per = r[side].get("per_output") or []
            if len(per) > 1:
                cells = [f"{e['output']}={fmt_db(e['sqnr_db'])}" if "sqnr_db" in e else
                         f"{e['output']}=agree {e['agreement']:.3f}" for e in per]
                print(f"  {r['name']} {side}: " + ", ".join(cells))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--evaluate-job" in argv:
        at = argv.index("--evaluate-job") + 1
        if at >= len(argv):
            print("error: -: usage: --evaluate-job needs a job file", file=sys.stderr)
            return 2
        return evaluate_main(argv[at])

    floats = sorted(p.name[: -len("_f32.tflite")] for p in FIXTURE_DIR.glob("*_f32.tflite"))
    args, ap = parse_args(argv, floats)
    chosen = floats if not args.fixtures else [x.strip() for x in args.fixtures.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in floats]
    if unknown:
        ap.error("unknown fixture(s): " + ", ".join(unknown) + " (have: " + ", ".join(floats) + ")")
    if not args.litert_python.is_file():
        print(f"error: -: setup: {args.litert_python} missing (run tools/setup-venv.sh)", file=sys.stderr)
        return 1

    try:
        return compare(args, chosen)
    except StepError as e:
        print(f"error: {e.fixture}: {e.step}: {e.what}", file=sys.stderr)
        return 1


def prepare(mf, tf, spec, fdir, args, npuc, npuc_why, row):
    """Rebuilds, converts, writes the data and runs npuc for one fixture; fills `row` and
    returns the evaluation job. Raises StepError naming the step that could not run."""
    name = spec.name
    if fdir.exists():
        shutil.rmtree(fdir)
    fdir.mkdir(parents=True)
    float_path = FIXTURE_DIR / f"{name}_f32.tflite"
    print(f"[{name}] rebuilding and converting", file=sys.stderr)
    seed = zlib.crc32(name.encode())
    calib = draw(spec, seed, args.calib_samples)
    evals = draw(spec, seed + EVAL_SEED_OFFSET, args.eval_samples)
    quantized = {}
    src_tmp = tempfile.TemporaryDirectory(prefix="npuc-qcmp-src-")
    try:
        try:
            with quiet(args):
                source = mf.Source(spec.build(), src_tmp.name)
        except Exception as e:  # noqa: BLE001 - Keras/TF raise several types
            raise StepError(name, "rebuild model from make_fixtures.py", one_line(e)) from None
        # Names by which samples are matched to model inputs: the tf.function's signature
        # names (also the converter's dict keys); a Keras model has one input.
        input_names = source.input_names
        tensor_names = signature_tensor_names(mf, float_path)
        if input_names and len(input_names) > 1:
            lost = [n for n in input_names if n not in tensor_names]
            if lost:
                raise StepError(name, "signature", f"{float_path.name} has no signature input {lost}")
        try:
            with quiet(args):
                buf, _ = mf.convert(spec, source, "f32", seed)
        except Exception as e:  # noqa: BLE001 - the converter raises several types
            raise StepError(name, "converter f32 rebuild", one_line(e)) from None
        rebuilt = fdir / "rebuilt_f32.tflite"
        rebuilt.write_bytes(buf)
        if sha256(rebuilt) == sha256(float_path):
            row["rebuild"] = "identical bytes"
        try:
            with quiet(args):
                qbuf = convert_int8(tf, spec, source, calib)
            conv_path = fdir / "converter_int8.tflite"
            conv_path.write_bytes(qbuf)
            quantized["converter"] = str(conv_path)
            row["converter"]["float_ops"] = float_ops(mf, qbuf)
        except Exception as e:  # noqa: BLE001 - converter could not quantize: skipped, said why
            lines = [l for l in str(e).splitlines() if l.strip()]
            why = next((l for l in lines if "error" in l.lower()), lines[-1] if lines else repr(e))
            row["converter"]["skipped"] = "converter: " + one_line(why, 200)
    finally:
        src_tmp.cleanup()

    calib_dir = fdir / "calibration"
    statics = static_input_shapes(mf, float_path)
    names = input_names or ["input"]
    wanted = [statics.get(tensor_names.get(n, n)) if len(names) > 1 else next(iter(statics.values()), None)
              for n in names]
    try:
        npuc_calib = at_static_shapes(calib, wanted)
    except ValueError as e:
        raise StepError(name, "calibration samples", str(e)) from None
    write_samples(npuc_calib, calib_dir, names, tensor_names)
    eval_paths = write_samples(evals, fdir / "eval", input_names or ["input"], tensor_names)
    if npuc is None:
        row["npuc"]["skipped"] = npuc_why
    else:
        print(f"[{name}] npuc opt", file=sys.stderr)
        try:
            path, why = run_npuc(npuc, name, float_path, calib_dir, fdir / "npuc_int8.tflite", args)
        except StepError as e:
            # The converter's column still gets evaluated; the run exits 1 at the end.
            path, why = None, None
            row["npuc"]["error"] = f"{e.step}: {e.what}"
            row["errors"] = [{"fixture": e.fixture, "step": e.step, "what": e.what}]
        if why:
            row["npuc"]["skipped"] = why
        elif path is not None:
            quantized["npuc"] = str(path)
            row["npuc"]["float_ops"] = float_ops(mf, path.read_bytes())
    return {"name": name, "float": str(float_path), "rebuilt": str(rebuilt),
            "quantized": quantized, "eval_inputs": eval_paths, "input_names": input_names}


@contextlib.contextmanager
def quiet(args):
    """TensorFlow prints SavedModel signatures and converter chatter on stdout, which
    belongs to the table / JSON: to stderr with --verbose, else nowhere."""
    import warnings

    with contextlib.ExitStack() as stack:
        if args.verbose:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        else:
            sink = stack.enter_context(open(os.devnull, "w"))
            stack.enter_context(contextlib.redirect_stdout(sink))
            stack.enter_context(contextlib.redirect_stderr(sink))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        yield


def compare(args, chosen):
    npuc, npuc_why = None, None
    if args.no_npuc:
        npuc_why = "not run (--no-npuc)"
    else:
        npuc = args.npuc.resolve() if args.npuc else build_npuc()
        if not npuc.is_file():
            raise StepError("-", "npuc", f"{npuc} does not exist")
        npuc_why = npuc_ready(npuc)
        if npuc_why:
            # The quantize pass is not there yet: nothing to compare against, a failure.
            raise StepError("-", "npuc quantize pass", npuc_why + " (use --no-npuc for the converter column)")

    mf, tf = import_fixtures()
    specs = {s.name: s for s in mf.specs()}
    missing = [x for x in chosen if x not in specs]
    if missing:
        raise StepError(",".join(missing), "make_fixtures.specs()", "no such spec")

    tmp = None
    if args.dir:
        work = args.dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="npuc-qcmp-")
        work = Path(tmp.name)

    jobs, rows, errors = [], {}, []
    for name in chosen:
        row = rows[name] = {"name": name, "converter": {}, "npuc": {}, "rebuild": None, "outputs": []}
        try:
            jobs.append(prepare(mf, tf, specs[name], work / name, args, npuc, npuc_why, row))
            for e in row.pop("errors", []):
                print(f"error: {e['fixture']}: {e['step']}: {e['what']}", file=sys.stderr)
                errors.append(e)
        except StepError as e:
            # Keep going: the other fixtures still get their row; the run exits 1 at the end.
            print(f"error: {e.fixture}: {e.step}: {e.what}", file=sys.stderr)
            errors.append({"fixture": e.fixture, "step": e.step, "what": e.what})
            row["npuc" if e.step.startswith("npuc") else "converter"]["error"] = f"{e.step}: {e.what}"
            if not e.step.startswith("npuc"):
                row["npuc"].setdefault("error", "not evaluated (see the converter side)")

    job_path = work / "job.json"
    job_path.write_text(json.dumps({"resolver": args.resolver, "threads": args.threads, "fixtures": jobs}))
    print("[litert] evaluating", file=sys.stderr)
    r = subprocess.run([str(args.litert_python), str(Path(__file__).resolve()), "--evaluate-job", str(job_path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise StepError("-", "litert evaluation", f"exit {r.returncode}: {one_line(r.stderr[-2000:])}")
    ev = json.loads(r.stdout, object_hook=lambda d: {k: _unjson(v) for k, v in d.items()})

    for e in ev["errors"]:
        print(f"error: {e['fixture']}: {e['step']}: {e['what']}", file=sys.stderr)
        errors.append(e)
    for res in ev["results"]:
        row = rows[res["name"]]
        row["outputs"] = res["outputs"]
        if row["rebuild"] is None:
            mad = res.get("rebuilt_max_abs_diff")
            row["rebuild"] = ("same outputs, different bytes" if mad == 0.0 else
                              f"OUTPUTS DIFFER from the committed float file (max |diff| {mad})")
        for side, q in res["quantized"].items():
            row[side].update(q)
            io = q.get("io") or {"inputs": [], "outputs": []}
            if any(t == "float32" for t in io["inputs"] + io["outputs"]):
                # Both sides must have int8 I/O (npuc's default io=int8, the converter's
                # inference types); a float boundary means the pass did not quantize the
                # model as asked, and its figure is not comparable: an error, not a win.
                e = {"fixture": res["name"], "step": f"{side} int8 I/O",
                     "what": f"the quantized model has float I/O {io}"}
                print(f"error: {e['fixture']}: {e['step']}: {e['what']}", file=sys.stderr)
                errors.append(e)
                row[side]["error"] = f"{e['step']}: {e['what']}"

    report = {"runtime": ev["runtime"], "resolver": ev["resolver"], "calib_samples": args.calib_samples,
              "eval_samples": args.eval_samples,
              "npuc": str(npuc) if npuc else None,
              "npuc_passes": "canonicalize,quantize{calibration=DIR"
                             + (f",observer={args.observer}" if args.observer else "")
                             + (f",activations={args.activations}" if args.activations else "") + "}",
              "calibration_seed": "crc32(fixture name) (make_fixtures.py's)",
              "evaluation_seed": f"crc32(fixture name) + {EVAL_SEED_OFFSET}",
              "fixtures": [rows[n] for n in chosen], "errors": errors}
    both = [x for x in report["fixtures"]
            if all(x[side].get("sqnr_db") is not None and not x[side].get("error")
                   for side in ("converter", "npuc"))]
    report["goal_met"] = bool(both) and all(x["npuc"]["sqnr_db"] >= x["converter"]["sqnr_db"] for x in both)
    if args.json:
        json.dump(_jsonable(report), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_table(report)
        if args.dir:
            print(f"models and data kept in {work}")
    if tmp:
        tmp.cleanup()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
