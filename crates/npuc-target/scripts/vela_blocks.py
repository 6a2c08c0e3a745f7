"""Prints the OFM block (h, w, c) Vela 5.2 find_block_config picks for six typical int8 layers per
Ethos-U accelerator; the source of blocks.candidates in targets/ethos-u*.toml.
Run: .venv/bin/python crates/npuc-target/scripts/vela_blocks.py
"""
from ethosu.vela.architecture_features import ArchitectureFeatures, Accelerator
from ethosu.vela.architecture_allocator import find_block_config
from ethosu.vela.operation import NpuBlockType, Kernel
from ethosu.vela.shape4d import Shape4D
from ethosu.vela.ethos_u55_regs.ethos_u55_regs import resampling_mode
import io, contextlib
cases = [
 ("conv3x3 16->16", NpuBlockType.ConvolutionMxN, (1,540,960,16),(1,540,960,16), 3),
 ("conv5x5 1->16", NpuBlockType.ConvolutionMxN, (1,540,960,1),(1,540,960,16), 5),
 ("conv1x1 64->64", NpuBlockType.ConvolutionMxN, (1,56,56,64),(1,56,56,64), 1),
 ("conv3x3 32->64", NpuBlockType.ConvolutionMxN, (1,112,112,32),(1,112,112,64), 3),
 ("dw3x3 128", NpuBlockType.ConvolutionDepthWise, (1,56,56,128),(1,56,56,128), 3),
 ("conv1x1 256->256", NpuBlockType.ConvolutionMxN, (1,14,14,256),(1,14,14,256), 1),
]
for acc in ["ethos-u55-32","ethos-u55-64","ethos-u55-128","ethos-u55-256","ethos-u65-256","ethos-u65-512"]:
    with contextlib.redirect_stdout(io.StringIO()):
        arch = ArchitectureFeatures(None, acc, "internal-default", "internal-default", 3, False, None)
    out=[]
    for name, bt, ifm, ofm, k in cases:
        cfg = find_block_config(arch, bt, Shape4D(*ofm), Shape4D(*ifm), None, False, 8, Kernel(k,k), 0, True, resampling_mode.NONE)
        b = cfg.ofm_block
        out.append((name, [b.height,b.width,b.depth]))
    print(acc, out)
