//! An op as the hardware passes Vela 5.2 runs it: its graph rewrites (softmax, mean,
//! squared difference, PReLU, transpose convolution, data movement as memory copies)
//! summarised as block queries with their output-stage classes and weights.

use npuc_ir::op::Op;

use super::{
    act_class, elems, Ctx, Pass, ACT_LUT, ACT_NONE, ACT_RELU, LUT_BANKS, OUT_ADVANCED_ADD, OUT_MAXPOOL, OUT_MUL,
    OUT_OTHER, SOFTMAX_FULL_PASSES, SOFTMAX_ROW_PASSES,
};
use crate::block::{BlockKind, BlockQuery, Kernel};
use npuc_ir::graph::{OpId, ValueId};

impl Ctx<'_> {
    /// The op as hardware passes (Vela's graph rewrites, summarised).
    pub(super) fn passes(&self, id: OpId) -> Result<Vec<Pass>, String> {
        let o = self.g.op(id);
        let ofm = self.shape_of(o.outputs.first().copied(), "output")?;
        let ifm = || self.shape_of(o.input(0), "input");
        let bits = 8; // float graphs are costed as their int8 form
        let mk = |kind, ofm, ifm, kernel, out_class, act_class| Pass {
            query: BlockQuery { kind, ofm, ifm, ifm2: None, uses_scalar: false, ifm_bits: bits, kernel, lut_banks: 0 },
            out_class,
            act_class,
            weights: None,
            copy: false,
        };
        let elementwise =
            |ofm: [u32; 3], out_class, act| mk(BlockKind::Elementwise, ofm, ofm, Kernel::UNIT, out_class, act);
        let copy = |ofm: [u32; 3]| Pass { copy: true, ..elementwise(ofm, OUT_OTHER, ACT_NONE) };
        let lut = |ofm: [u32; 3]| {
            let mut p = elementwise(ofm, OUT_OTHER, ACT_LUT);
            p.query.lut_banks = LUT_BANKS;
            p
        };
        let binary = |out_class, act| -> Result<Pass, String> {
            let a = self.shape_of(o.input(0), "input")?;
            let b = self.shape_of(o.input(1), "second input")?;
            let mut p = elementwise(ofm, out_class, act);
            p.query.ifm = a;
            p.query.ifm2 = Some(b);
            p.query.uses_scalar = elems(a) == 1 || elems(b) == 1;
            Ok(p)
        };
        let filter = |slot: usize| -> Result<(ValueId, [usize; 4]), String> {
            let v = o.input(slot).ok_or("missing filter operand")?;
            let s = &self.g.value(v).ty.shape;
            match *s.as_slice() {
                [a, b, c, d] => Ok((v, [a, b, c, d])),
                [a, b] => Ok((v, [a, 1, 1, b])),
                _ => Err(format!("filter shape {s:?} is not OHWI")),
            }
        };
        let k = |size: [u32; 2], stride: [u32; 2], dilation: [u32; 2]| Kernel { size, stride, dilation };
        Ok(match &o.op {
            Op::Conv2d(a) => {
                let (w, s) = filter(1)?;
                let kernel = k([s[1] as u32, s[2] as u32], a.stride, a.dilation);
                let mut p = mk(BlockKind::ConvMxN, ofm, ifm()?, kernel, OUT_OTHER, act_class(a.activation));
                p.weights = Some((w, s));
                vec![p]
            }
            Op::DepthwiseConv2d(a) => {
                let (w, s) = filter(1)?;
                let kernel = k([s[1] as u32, s[2] as u32], a.stride, a.dilation);
                let mut p = mk(BlockKind::Depthwise, ofm, ifm()?, kernel, OUT_OTHER, act_class(a.activation));
                // Depthwise weights are stored [1, H, W, C]; the reorder takes [C, H, W, 1].
                p.weights = Some((w, [s[3], s[1], s[2], 1]));
                vec![p]
            }
            Op::TransposeConv(a) => {
                // Vela runs it as a convolution over the zero-upsampled IFM.
                let (w, s) = filter(1)?;
                let input = self.shape_of(o.input(2), "input")?;
                let kernel = k([s[1] as u32, s[2] as u32], [1, 1], [1, 1]);
                let mut p =
                    mk(BlockKind::ConvMxN, ofm, [ofm[0], ofm[1], input[2]], kernel, OUT_OTHER, act_class(a.activation));
                p.weights = Some((w, s));
                vec![p]
            }
            Op::FullyConnected(a) => {
                let (w, s) = filter(1)?;
                let input = ifm()?;
                let rows = (elems(input) / s[3].max(1) as u64).max(1) as u32;
                let mut p = mk(
                    BlockKind::VectorProduct,
                    [1, rows, ofm[2]],
                    [1, rows, s[3] as u32],
                    Kernel::UNIT,
                    OUT_OTHER,
                    act_class(a.activation),
                );
                p.weights = Some((w, s));
                vec![p]
            }
            Op::AveragePool2d(a) => {
                vec![mk(
                    BlockKind::Pooling,
                    ofm,
                    ifm()?,
                    k(a.filter, a.stride, [1, 1]),
                    OUT_OTHER,
                    act_class(a.activation),
                )]
            }
            Op::MaxPool2d(a) => {
                vec![mk(
                    BlockKind::Pooling,
                    ofm,
                    ifm()?,
                    k(a.filter, a.stride, [1, 1]),
                    OUT_MAXPOOL,
                    act_class(a.activation),
                )]
            }
            Op::Mean { .. } => {
                // Vela: a depthwise convolution with a kernel over the reduced area, then a
                // rescaling multiply.
                let input = ifm()?;
                let out = [1, 1, ofm[2]];
                vec![
                    mk(BlockKind::Depthwise, out, input, k([input[0], input[1]], [1, 1], [1, 1]), OUT_OTHER, ACT_NONE),
                    elementwise(out, OUT_MUL, ACT_NONE),
                ]
            }
            Op::Sum { .. } => vec![mk(BlockKind::ReduceSum, ofm, ifm()?, Kernel::UNIT, OUT_OTHER, ACT_NONE)],
            Op::Add { activation, .. } | Op::Sub { activation, .. } => {
                vec![binary(OUT_ADVANCED_ADD, act_class(*activation))?]
            }
            Op::Mul { activation } => vec![binary(OUT_MUL, act_class(*activation))?],
            Op::Maximum | Op::Minimum => vec![binary(OUT_OTHER, ACT_NONE)?],
            // Vela 5.2 (per-layer report): each input copied and rescaled (copy + multiply),
            // subtracted, squared, offset and rescaled: 8 passes over the output.
            Op::SquaredDifference => {
                let mut v = Vec::with_capacity(8);
                for _ in 0..2 {
                    v.push(copy(ofm));
                    v.push(elementwise(ofm, OUT_MUL, ACT_NONE));
                }
                v.push(binary(OUT_ADVANCED_ADD, ACT_NONE)?);
                v.push(elementwise(ofm, OUT_MUL, ACT_NONE));
                v.push(elementwise(ofm, OUT_ADVANCED_ADD, ACT_NONE));
                v.push(elementwise(ofm, OUT_MUL, ACT_NONE));
                v
            }
            // Vela 5.2 (per-layer report): the input times alpha, the input rescaled (two
            // multiplies) and the maximum of the two.
            Op::Prelu => {
                vec![binary(OUT_MUL, ACT_NONE)?, elementwise(ofm, OUT_MUL, ACT_NONE), binary(OUT_OTHER, ACT_NONE)?]
            }
            Op::Relu | Op::Relu6 | Op::ReluN1To1 => vec![elementwise(ofm, OUT_OTHER, ACT_RELU)],
            Op::Logistic | Op::Tanh | Op::HardSwish | Op::LeakyRelu { .. } | Op::Exp | Op::Rsqrt => vec![lut(ofm)],
            Op::Quantize | Op::Dequantize => vec![elementwise(ofm, OUT_OTHER, ACT_NONE)],
            Op::Softmax { .. } => {
                let row = [ofm[0], ofm[1], 1];
                let mut v = vec![mk(BlockKind::Pooling, row, ofm, k([1, 1], [1, 1], [1, 1]), OUT_MAXPOOL, ACT_NONE)];
                v.extend((0..SOFTMAX_FULL_PASSES).map(|_| lut(ofm)));
                v.extend((0..SOFTMAX_ROW_PASSES).map(|_| elementwise(row, OUT_OTHER, ACT_NONE)));
                v
            }
            Op::ResizeNearestNeighbor(_) => {
                vec![mk(BlockKind::Pooling, ofm, ifm()?, Kernel::UNIT, OUT_OTHER, ACT_NONE)]
            }
            Op::ResizeBilinear(_) => {
                vec![mk(BlockKind::Depthwise, ofm, ifm()?, k([2, 2], [1, 1], [1, 1]), OUT_OTHER, ACT_NONE)]
            }
            // Vela removes these (the tensor is reinterpreted in place).
            Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims => vec![],
            // Data movement: Vela 5.2 emits one memory copy per input (concatenation, pack)
            // or per output (split, unpack, slices, pad); its per-layer report costs each
            // like an elementwise pass over the tensor copied.
            Op::Concatenation { .. } | Op::Pack { .. } => {
                o.inputs.iter().map(|&v| self.shape_of(v, "input").map(copy)).collect::<Result<_, _>>()?
            }
            _ => o.outputs.iter().map(|&v| self.shape_of(Some(v), "output").map(copy)).collect::<Result<_, _>>()?,
        })
    }
}
