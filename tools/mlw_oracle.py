#!/usr/bin/env python3
"""Oracle for the Ethos-U compressed weight stream: a thin CLI around Vela's
`ethosu.mlw_codec` (PyPI ethos-u-vela, pinned in tools/requirements-oracle.txt), so Rust
tests can compare npuc's codec with the reference one.

  mlw_oracle.py encode IN.npy OUT.bin [IN.npy OUT.bin ...]   int16 values -> stream bytes
  mlw_oracle.py decode IN.bin OUT.npy [IN.bin OUT.npy ...]   stream bytes -> int16 values
  mlw_oracle.py reorder IN.npy OUT.bin [...] --accel Ethos_U55_128 --ofm-block-depth 16
        --traversal depth|part|depthwise --ifm-bits 8 --dilation 1,1
      4-D int16 OHWI weights -> stream of Vela's reorder + encode (ethosu.vela.api.npu_encode_weights)
  mlw_oracle.py bias IN.npy OUT.bin [...]   (N,3) int64 rows (bias, scale, shift) -> N 10-byte
      scale/bias records (ethosu.vela.api.npu_encode_bias)

Several pairs per call amortise the interpreter start-up. Note that Vela's decoder exits the
process on a malformed stream (after printing e.g. "bitbuf_getbit: underrun"), so a failure
is a non-zero exit status, not a Python exception.
"""
import argparse
import sys

import numpy as np

try:
    from ethosu import mlw_codec
except ImportError as e:  # loud: the tests must not silently skip the oracle
    sys.exit(f"error: ethosu.mlw_codec not importable ({e}); run tools/setup-venv.sh")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["encode", "decode", "reorder", "bias"])
    ap.add_argument("paths", nargs="+", help="pairs of input and output files")
    ap.add_argument("--accel", default="Ethos_U55_128", help="NpuAccelerator member name (reorder)")
    ap.add_argument("--ofm-block-depth", type=int, default=16, help="OFM block depth (reorder)")
    ap.add_argument("--traversal", choices=["depth", "part", "depthwise"], default="depth", help="(reorder)")
    ap.add_argument("--ifm-bits", type=int, default=8, help="IFM bit depth, 8 or 16 (reorder)")
    ap.add_argument("--dilation", default="1,1", help="dilation x,y (reorder)")
    args = ap.parse_args()
    if len(args.paths) % 2:
        ap.error("paths must come in IN OUT pairs")
    for src, dst in zip(args.paths[::2], args.paths[1::2]):
        if args.mode == "encode":
            values = np.load(src)
            if values.dtype != np.int16 or values.ndim != 1:
                sys.exit(f"error: {src}: expected a 1-D int16 array, got {values.dtype} {values.shape}")
            stream = mlw_codec.encode([int(v) for v in values])
            with open(dst, "wb") as f:
                f.write(bytes(stream))
        elif args.mode == "reorder":
            from ethosu.vela.api import NpuAccelerator, NpuBlockTraversal, npu_encode_weights

            w = np.load(src)
            if w.dtype != np.int16 or w.ndim != 4:
                sys.exit(f"error: {src}: expected a 4-D int16 OHWI array, got {w.dtype} {w.shape}")
            trav = (
                NpuBlockTraversal.PART_KERNEL_FIRST if args.traversal == "part" else NpuBlockTraversal.DEPTH_FIRST
            )
            dil = tuple(int(d) for d in args.dilation.split(","))
            stream = npu_encode_weights(
                NpuAccelerator[args.accel],
                w,
                dil,
                args.ifm_bits,
                args.ofm_block_depth,
                args.traversal == "depthwise",
                trav,
            )
            with open(dst, "wb") as f:
                f.write(bytes(stream))
        elif args.mode == "bias":
            from ethosu.vela.api import npu_encode_bias

            rows = np.load(src)
            if rows.ndim != 2 or rows.shape[1] != 3:
                sys.exit(f"error: {src}: expected an (N, 3) array, got {rows.shape}")
            out = bytearray()
            for b, sc, sh in rows.astype(np.int64):
                out += npu_encode_bias(np.int64(b), int(sc), int(sh))
            with open(dst, "wb") as f:
                f.write(bytes(out))
        else:
            with open(src, "rb") as f:
                stream = f.read()
            values = mlw_codec.decode(bytearray(stream))
            np.save(dst, np.asarray(list(values), dtype=np.int16))
    return 0


if __name__ == "__main__":
    sys.exit(main())
