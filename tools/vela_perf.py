#!/usr/bin/env python3
"""Vela performance oracle: compiles a .tflite with Arm's Vela 5.2 for one npuc target and
prints Vela's own performance estimate as JSON (total and per-op cycles, memory use,
encoded weight bytes, wall time). npuc's cost model (crates/npuc-npu/src/perf.rs) is
calibrated against it by crates/npuc-npu/tests/perf_vela.rs.

    .venv/bin/python tools/vela_perf.py MODEL.tflite --target-toml targets/ethos-u55-128.toml
    .venv/bin/python tools/vela_perf.py MODEL.tflite --accelerator-config ethos-u55-128 \
        --system-config Ethos_U55_High_End_Embedded --memory-mode Shared_Sram

Sources of the figures: Vela writes `<model>_per-layer.csv` (one row per Vela operator:
"Op Cycles" is its total, "NPU" the compute cycles, "* AC" the memory access cycles) and
`<model>_summary_<system config>.csv` (cycles_total, sram_memory_used in KiB,
off_chip_flash_memory_used / dram_memory_used in KiB, total_npu_encoded_weights in bytes)
into its --output-dir when run with --verbose-performance.

Per-op rows are grouped into the ops of the input model: Vela splits some ops into several
(a fused activation, SOFTMAX into about 30 elementwise ops); a group ends at the row that
writes one of the input model's op output tensors (Vela names an operator after its output
tensor) and the rows after it that repeat that name (a fused activation, a LUT) join it.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def vela_options(args) -> tuple[str, str, str]:
    """The accelerator, system config and memory mode, from the target file or the flags."""
    if args.target_toml:
        with open(args.target_toml, "rb") as f:
            target = tomllib.load(f)
        vela = target.get("vela")
        if not vela:
            fail(f"{args.target_toml}: no [vela] section (Vela runs only Ethos-U targets)")
        return vela["accelerator_config"], vela["system_config"], vela["memory_mode"]
    if not (args.accelerator_config and args.system_config and args.memory_mode):
        fail("give --target-toml, or all of --accelerator-config, --system-config, --memory-mode")
    return args.accelerator_config, args.system_config, args.memory_mode


def model_output_names(model: Path) -> set[str]:
    """Names of every op output tensor of every subgraph of the input model."""
    from ethosu.vela.tflite.Model import Model

    buf = model.read_bytes()
    m = Model.GetRootAsModel(buf, 0)
    names = set()
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            for i in range(op.OutputsLength()):
                t = op.Outputs(i)
                if t >= 0:
                    names.add(sg.Tensors(t).Name().decode())
    return names


def group_rows(rows: list[dict], outputs: set[str]) -> list[dict]:
    """Vela's per-layer rows grouped into the input model's ops (see the module doc)."""
    ops = []
    cur = None
    closed = None
    for r in rows:
        name, orig = r["Name"], r.get("Original Operator") or r.get("TFLite_operator", "")
        if closed is not None and name == closed["name"]:
            target = closed
        else:
            if cur is None or cur["type"] != orig:
                cur = {"name": name, "type": orig, "vela_ops": [], "cycles": 0, "npu_cycles": 0,
                       "sram_access_cycles": 0.0, "external_access_cycles": 0.0, "macs": 0,
                       "ends_at_model_tensor": False}
                ops.append(cur)
            target = cur
            closed = None
        target["vela_ops"].append(r["NNG Operator"])
        target["cycles"] += int(float(r["Op Cycles"]))
        target["npu_cycles"] += int(float(r["NPU"]))
        target["sram_access_cycles"] += float(r["SRAM AC"])
        target["external_access_cycles"] += (
            float(r["DRAM AC"]) + float(r["OnFlash AC"]) + float(r["OffFlash AC"])
        )
        target["macs"] += int(float(r["MAC Count"]))
        target["name"] = name
        if target is cur and name in outputs:
            cur["ends_at_model_tensor"] = True
            closed, cur = cur, None
    return ops


def count_from_stdout(stdout: str, label: str) -> int:
    """A count from Vela's network summary line `<label> = N (p%)`; 0 when Vela omits it."""
    for line in stdout.splitlines():
        if line.startswith(label) and "=" in line:
            return int(line.split("=")[1].split()[0])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--target-toml", type=Path)
    ap.add_argument("--accelerator-config")
    ap.add_argument("--system-config")
    ap.add_argument("--memory-mode")
    ap.add_argument("--legacy-core", action="store_true",
                    help="Vela's deprecated Python core (npu_performance.py) instead of its default C++ core")
    ap.add_argument("--vela", type=Path, default=REPO / ".venv" / "bin" / "vela",
                    help="the vela executable (default: the repo's .venv/bin/vela)")
    args = ap.parse_args()

    if not args.vela.exists():
        fail(f"{args.vela}: Vela is not installed (run tools/setup-venv.sh)")
    if not args.model.is_file():
        fail(f"{args.model}: no such model")
    accel, system, mode = vela_options(args)
    ini = Path(os.path.realpath(args.vela)).parent.parent
    ini_files = list(ini.glob("lib/python3*/site-packages/ethosu/config_files/Arm/vela.ini"))

    with tempfile.TemporaryDirectory(prefix="vela_perf_") as out:
        cmd = [str(args.vela), str(args.model), "--accelerator-config", accel, "--system-config", system,
               "--memory-mode", mode, "--verbose-performance", "--output-dir", out]
        if args.legacy_core:
            cmd.append("--debug-force-legacy-core")
        if ini_files:
            cmd += ["--config", str(ini_files[0])]
        t0 = time.monotonic()
        run = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if run.returncode != 0:
            fail(f"{args.model}: vela exited with {run.returncode}: {run.stderr.strip()[-2000:]}")
        stem = args.model.stem
        summary_path = Path(out) / f"{stem}_summary_{system}.csv"
        layer_path = Path(out) / f"{stem}_per-layer.csv"
        if not summary_path.exists() or not layer_path.exists():
            fail(f"{args.model}: vela wrote no performance CSVs (NPU ops: none?); stdout: {run.stdout[-1000:]}")
        with open(summary_path, newline="") as f:
            summary = next(csv.DictReader(f))
        with open(layer_path, newline="") as f:
            # The legacy core's CSV lists NPU operators only and has no Target column.
            # It also repeats the header line before each NPU subgraph's rows.
            rows = [r for r in csv.DictReader(f) if r.get("Target", "NPU") == "NPU" and r["Name"] != "Name"]

    kib = 1024.0
    external_kib = max(float(summary["dram_memory_used"]), float(summary["off_chip_flash_memory_used"]),
                       float(summary["on_chip_flash_memory_used"]))
    result = {
        "model": str(args.model),
        "accelerator_config": accel,
        "system_config": system,
        "memory_mode": mode,
        "cycles": int(float(summary["cycles_total"])),
        "npu_cycles": int(float(summary["cycles_npu"])),
        "macs": int(float(summary["nn_macs"])),
        "sram_bytes": int(round(float(summary["sram_memory_used"]) * kib)),
        "external_bytes": int(round(external_kib * kib)),
        "encoded_weight_bytes": int(float(summary["total_npu_encoded_weights"])),
        "original_weight_bytes": int(float(summary["total_original_weights"])),
        "cpu_ops": count_from_stdout(run.stdout, "CPU operators"),
        "npu_ops": count_from_stdout(run.stdout, "NPU operators"),
        "core": "legacy" if args.legacy_core else "regor",
        "ops": group_rows(rows, model_output_names(args.model)),
        "wall_time_s": round(wall, 3),
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
