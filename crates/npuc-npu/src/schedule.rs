//! Striping: running an NPU command whose tensors live in DRAM through a small SRAM.
//!
//! When the feature maps do not fit the SRAM of a DRAM target, every activation stays in
//! DRAM and each NPU command is split along OFM height into stripes. A stripe moves the IFM
//! rows it needs (the kernel halo included) into SRAM with DMA commands, computes its OFM
//! rows into SRAM, and moves them back. Windowed ops carry the padding of their stripe
//! explicitly (`[top, bottom, left, right]`, as the Ethos-U's `IFM_PAD_*` registers do), so
//! a stripe in the middle of the image has no vertical padding while the first and last
//! keep the op's. Elementwise ops take the same rows of every full-height operand and
//! broadcast operands whole. Ops that cannot be cut by rows (reductions, softmax over a
//! row-crossing axis, concatenation, fully connected) run as one stripe, which must fit.
//!
//! The stripe height is the largest whose SRAM footprint (every staged operand and the OFM
//! stripe, each aligned) fits the SRAM; a smaller SRAM gives more, thinner stripes.

use npuc_ir::{Padding, Pool2dAttrs};

use crate::program::{Command, NpuCommand, NpuOp, Region, TensorRef};

/// How a command's rows depend on its IFM rows.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// Effective (dilated) kernel height.
    kh: usize,
    /// Vertical stride.
    sh: usize,
    /// SAME padding `[top, bottom, left, right]` of the whole op (zeros for VALID).
    pad: [usize; 4],
}

/// The window of a windowed command, `None` for elementwise ones and `Err` for commands
/// that cannot be cut into rows.
fn window(cmd: &NpuCommand) -> Result<Option<Window>, ()> {
    let ifm = cmd.operands.first().and_then(|t| t.as_ref()).ok_or(())?;
    if ifm.shape.len() != 4 {
        return Err(());
    }
    let (h, w) = (ifm.shape[1], ifm.shape[2]);
    let geom = |padding: Padding, k: [usize; 2], s: [u32; 2], d: [u32; 2]| {
        let eff = |k: usize, d: u32| (k.max(1) - 1) * d.max(1) as usize + 1;
        let kh = eff(k[0], d[0]);
        let pad = match padding {
            Padding::Valid => [0; 4],
            Padding::Same => {
                let [t, b] = npuc_ir::shape::same_padding(h, k[0], s[0] as usize, d[0] as usize);
                let [l, r] = npuc_ir::shape::same_padding(w, k[1], s[1] as usize, d[1] as usize);
                [t, b, l, r]
            }
        };
        Window { kh, sh: s[0].max(1) as usize, pad }
    };
    let kernel = || cmd.weights.as_ref().map(|w| [w.ohwi[1], w.ohwi[2]]).ok_or(());
    Ok(Some(match &cmd.op {
        NpuOp::Conv2d { padding, stride, dilation, .. } | NpuOp::DepthwiseConv2d { padding, stride, dilation, .. } => {
            geom(*padding, kernel()?, *stride, *dilation)
        }
        NpuOp::MaxPool(a) => pool(a, &geom),
        // TFLite's average excludes padded taps, which explicit padding cannot express:
        // only a pool without padding is cut.
        NpuOp::AveragePool(a) => {
            let w = pool(a, &geom);
            if w.pad != [0; 4] {
                return Err(());
            }
            w
        }
        NpuOp::Add { .. }
        | NpuOp::Sub { .. }
        | NpuOp::Mul { .. }
        | NpuOp::Maximum
        | NpuOp::Minimum
        | NpuOp::Prelu
        | NpuOp::Lut => return Ok(None),
        NpuOp::FullyConnected { .. }
        | NpuOp::Softmax { .. }
        | NpuOp::Mean { .. }
        | NpuOp::Concatenation { .. }
        | NpuOp::Pad => return Err(()),
    }))
}

fn pool(a: &Pool2dAttrs, geom: &dyn Fn(Padding, [usize; 2], [u32; 2], [u32; 2]) -> Window) -> Window {
    geom(a.padding, [a.filter[0] as usize, a.filter[1] as usize], a.stride, [1, 1])
}

/// Bytes of one row (H index) of an NHWC tensor with batch 1.
fn row_bytes(t: &TensorRef) -> u64 {
    let elems: usize = t.shape[2..].iter().product();
    t.dtype.storage_bytes(elems as u64).unwrap_or(u64::MAX)
}

/// Whether an operand is cut into the same rows as the OFM.
fn follows_rows(t: &TensorRef, ofm_h: usize) -> bool {
    t.region != Region::Flash && t.shape.len() == 4 && t.shape[0] == 1 && t.shape[1] == ofm_h && ofm_h > 1
}

/// One planned stripe of an operand: rows `[start, end)` of the stored tensor and the
/// explicit padding rows above and below.
struct Rows {
    start: usize,
    end: usize,
    top: usize,
    bottom: usize,
}

/// Rows of operand `slot` that OFM rows `[r0, r1)` need.
fn rows_for(
    cmd: &NpuCommand,
    win: Option<Window>,
    slot: usize,
    t: &TensorRef,
    ofm_h: usize,
    r0: usize,
    r1: usize,
) -> Rows {
    let whole = Rows { start: 0, end: t.shape.get(1).copied().unwrap_or(1), top: 0, bottom: 0 };
    if t.shape.len() != 4 || t.shape[0] != 1 {
        return Rows { end: 1, ..whole };
    }
    match win {
        Some(w) if slot == 0 => {
            let h = t.shape[1] as isize;
            let a = (r0 * w.sh) as isize - w.pad[0] as isize;
            let b = ((r1 - 1) * w.sh + w.kh) as isize - w.pad[0] as isize;
            Rows {
                start: a.clamp(0, h) as usize,
                end: b.clamp(0, h) as usize,
                top: (-a).max(0) as usize,
                bottom: (b - h).max(0) as usize,
            }
        }
        None if follows_rows(t, ofm_h) && cmd.outputs.len() == 1 => Rows { start: r0, end: r1, top: 0, bottom: 0 },
        _ => whole,
    }
}

/// Why a command cannot be scheduled through the SRAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeError(pub String);

/// Splits `cmd` (operands and results in DRAM or flash) into DMA-in, compute and DMA-out
/// commands whose SRAM use stays within `sram_bytes`.
pub fn stripe(cmd: &NpuCommand, sram_bytes: u64, alignment: u64) -> Result<Vec<Command>, StripeError> {
    let [ofm] = cmd.outputs.as_slice() else {
        return Err(StripeError(format!("{} has {} results; striping handles one", cmd.op.name(), cmd.outputs.len())));
    };
    let align = |n: u64| n.div_ceil(alignment.max(1)) * alignment.max(1);
    let ofm_h = if ofm.shape.len() == 4 && ofm.shape[0] == 1 { ofm.shape[1] } else { 1 };
    let win = window(cmd);
    let cuttable = win.is_ok() && ofm.shape.len() == 4 && ofm.shape[0] == 1;
    let win = win.unwrap_or(None);
    let footprint = |r0: usize, r1: usize| -> u64 {
        let mut total = 0u64;
        for (slot, t) in cmd.operands.iter().enumerate() {
            let Some(t) = t.as_ref().filter(|t| t.region != Region::Flash) else { continue };
            let rows = if cuttable {
                rows_for(cmd, win, slot, t, ofm_h, r0, r1)
            } else {
                Rows { start: 0, end: 1, top: 0, bottom: 0 }
            };
            let bytes = if cuttable && t.shape.len() == 4 {
                (rows.end - rows.start) as u64 * row_bytes(t)
            } else {
                t.bytes().unwrap_or(u64::MAX)
            };
            total = total.saturating_add(align(bytes));
        }
        let out = if cuttable { (r1 - r0) as u64 * row_bytes(ofm) } else { ofm.bytes().unwrap_or(u64::MAX) };
        total.saturating_add(align(out))
    };
    let fits = |h: usize| (0..ofm_h).step_by(h).all(|r0| footprint(r0, (r0 + h).min(ofm_h)) <= sram_bytes);
    let height = if cuttable { (1..=ofm_h).rev().find(|&h| fits(h)) } else { fits(ofm_h.max(1)).then_some(ofm_h) };
    let Some(height) = height else {
        let one_row = if cuttable {
            (0..ofm_h).map(|r| footprint(r, r + 1)).max().unwrap_or(0)
        } else {
            footprint(0, ofm_h.max(1))
        };
        let what = if cuttable { "one OFM row" } else { "the whole op (it is not cut into rows)" };
        return Err(StripeError(format!(
            "{} '{}' needs {one_row} bytes of SRAM for {what}, the target has {sram_bytes}",
            cmd.op.name(),
            cmd.name,
        )));
    };

    let mut out = Vec::new();
    for r0 in (0..ofm_h.max(1)).step_by(height.max(1)) {
        let r1 = (r0 + height).min(ofm_h.max(1));
        let mut cursor = 0u64;
        let mut staged = cmd.clone();
        for (slot, t) in cmd.operands.iter().enumerate() {
            let Some(t) = t.as_ref().filter(|t| t.region != Region::Flash) else { continue };
            let (src, len, shape, rows) = if cuttable && t.shape.len() == 4 {
                let rows = rows_for(cmd, win, slot, t, ofm_h, r0, r1);
                let mut shape = t.shape.clone();
                shape[1] = rows.end - rows.start;
                (
                    t.offset + rows.start as u64 * row_bytes(t),
                    (rows.end - rows.start) as u64 * row_bytes(t),
                    shape,
                    Some(rows),
                )
            } else {
                (t.offset, t.bytes().unwrap_or(0), t.shape.clone(), None)
            };
            out.push(Command::Dma { src_region: t.region, src, dst_region: Region::Sram, dst: cursor, len });
            staged.operands[slot] = Some(TensorRef { region: Region::Sram, offset: cursor, shape, ..t.clone() });
            if let (Some(w), Some(rows), 0) = (win, rows, slot) {
                staged.pad = Some([rows.top as u32, rows.bottom as u32, w.pad[2] as u32, w.pad[3] as u32]);
            }
            cursor += align(len);
        }
        let mut shape = ofm.shape.clone();
        if cuttable {
            shape[1] = r1 - r0;
        }
        let rows_len = if cuttable { (r1 - r0) as u64 * row_bytes(ofm) } else { ofm.bytes().unwrap_or(0) };
        staged.outputs = vec![TensorRef { region: Region::Sram, offset: cursor, shape, ..ofm.clone() }];
        staged.stripe = (r0 as u32, r1 as u32);
        out.push(Command::Npu(Box::new(staged)));
        let dst = ofm.offset + if cuttable { r0 as u64 * row_bytes(ofm) } else { 0 };
        out.push(Command::Dma { src_region: Region::Sram, src: cursor, dst_region: ofm.region, dst, len: rows_len });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use npuc_ir::{Activation, DType};

    use super::*;
    use crate::program::WeightRef;
    use crate::reorder::{Accelerator, Traversal};

    fn fm(region: Region, offset: u64, shape: [usize; 4]) -> TensorRef {
        TensorRef { region, offset, dtype: DType::I8, shape: shape.to_vec(), quant: None }
    }

    /// A 3x3 SAME convolution, stride 1, on an 8x4x2 IFM giving 8x4x2: 8 bytes a row.
    fn conv() -> NpuCommand {
        let weights = WeightRef {
            stream: 0,
            ohwi: [2, 3, 3, 2],
            accelerator: Accelerator::U55_128,
            traversal: Traversal::DepthFirst,
            ofm_block_depth: 16,
            ifm_bits: 8,
            dilation: (1, 1),
            tensor: fm(Region::Flash, 0, [2, 3, 3, 2]),
        };
        NpuCommand {
            op: NpuOp::Conv2d {
                padding: Padding::Same,
                stride: [1, 1],
                dilation: [1, 1],
                activation: Activation::None,
            },
            name: "c".into(),
            operands: vec![Some(fm(Region::Dram, 1000, [1, 8, 4, 2])), None, None],
            outputs: vec![fm(Region::Dram, 2000, [1, 8, 4, 2])],
            weights: Some(weights),
            scale_bias: Some(0),
            lut: None,
            stripe: (0, 8),
            clamp: Some([-128, 127]),
            pad: None,
        }
    }

    #[test]
    fn stripes_carry_the_halo_and_edge_padding() {
        // 64 bytes of SRAM, 16-byte aligned buffers: 3 OFM rows (24 → 32 bytes) need up to 5
        // IFM rows (40 → 48 bytes), too many; 2 OFM rows need at most 4 IFM rows, 32 + 16.
        let cmds = stripe(&conv(), 64, 16).unwrap();
        let npu: Vec<&NpuCommand> =
            cmds.iter().filter_map(|c| if let Command::Npu(n) = c { Some(&**n) } else { None }).collect();
        assert_eq!(npu.iter().map(|n| n.stripe).collect::<Vec<_>>(), vec![(0, 2), (2, 4), (4, 6), (6, 8)]);
        // First stripe: IFM rows 0..3 with one padding row on top; last: rows 5..8, one below.
        assert_eq!(npu[0].operands[0].as_ref().unwrap().shape, vec![1, 3, 4, 2]);
        assert_eq!(npu[0].pad, Some([1, 0, 1, 1]));
        assert_eq!(npu[1].operands[0].as_ref().unwrap().shape, vec![1, 4, 4, 2]);
        assert_eq!(npu[1].pad, Some([0, 0, 1, 1]));
        assert_eq!(npu[3].pad, Some([0, 1, 1, 1]));
        // The second stripe's IFM DMA starts at row 1; its OFM DMA writes rows 2..4.
        let dmas: Vec<(u64, u64)> = cmds
            .iter()
            .filter_map(|c| if let Command::Dma { src, len, .. } = c { Some((*src, *len)) } else { None })
            .collect();
        assert_eq!(dmas[2], (1000 + 8, 4 * 8));
        assert!(matches!(cmds[5], Command::Dma { dst: 2016, len: 16, dst_region: Region::Dram, .. }));
        for n in &npu {
            assert!(n.outputs[0].region == Region::Sram && n.outputs[0].offset + 16 <= 64);
        }
    }

    #[test]
    fn a_row_that_cannot_fit_is_an_error() {
        let e = stripe(&conv(), 32, 16).unwrap_err();
        assert!(e.0.contains("needs 48 bytes of SRAM for one OFM row"), "{}", e.0);
    }
}
