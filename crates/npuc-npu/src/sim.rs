//! Functional simulator: runs an [`NpuProgram`] from its own contents only.
//!
//! Memory is one SRAM byte array of the planned arena size (and a DRAM array when the plan
//! put feature maps there); flash is the program's constants section. Every command reads
//! its operands from, and writes its results to, the byte offsets the command names, so a
//! wrong memory plan shows up as wrong numbers. Weighted commands decode their compressed
//! stream, undo the reorder and add the zero points back. Int8 convolutions (regular and
//! depthwise) then requantize with the parsed scale/bias records and the command's fused
//! clamp ([`crate::mac`]), as the NPU does; the other weighted commands (fully connected,
//! whose LiteRT kernel rescales in double precision, and 16-bit activations) run the
//! interpreter's kernel with the records' bias, after checking each record's multiplier
//! and shift against the command's quantization. Everything else runs the reference
//! interpreter's kernels, so outputs are TFLite's bit for bit; CPU commands run their
//! subgraph of the embedded TFLite model through the interpreter.

use npuc_interp::fixed_point::quantize_multiplier;
use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{DType, Module, TensorType};
use thiserror::Error;

use crate::exec::eval_op;
use crate::mac::{conv_i8, ConvSpec, Record};
use crate::program::{Command, CpuCall, NpuCommand, NpuOp, NpuProgram, Region, TensorRef, WeightRef};
use crate::reorder::{reorder, ReorderParams};

/// Why a simulation failed.
#[derive(Debug, Error)]
pub enum SimError {
    /// An input does not match its descriptor.
    #[error("input {index} '{name}': expected {expected}, got {found}")]
    Input {
        /// Input position.
        index: usize,
        /// Input name.
        name: String,
        /// Expected type.
        expected: String,
        /// Given type.
        found: String,
    },
    /// A command failed.
    #[error("command {index} ({what} '{name}'): {reason}")]
    Command {
        /// Command index in the stream.
        index: usize,
        /// Command kind.
        what: String,
        /// Name of its first result.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// Memory bytes do not decode as the tensor a command describes.
    #[error("{what}: {reason}")]
    Decode {
        /// Which tensor.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor lies outside its memory.
    #[error("{what}: {region} bytes {start}..{end} lie outside its {size} bytes")]
    OutOfBounds {
        /// Which tensor.
        what: String,
        /// Region name.
        region: &'static str,
        /// First byte.
        start: u64,
        /// End byte.
        end: u64,
        /// Region size.
        size: u64,
    },
}

/// The memories of a running program.
struct Memory<'p> {
    sram: Vec<u8>,
    dram: Vec<u8>,
    flash: &'p [u8],
}

impl Memory<'_> {
    fn region(&self, r: Region) -> &[u8] {
        match r {
            Region::Sram => &self.sram,
            Region::Dram => &self.dram,
            Region::Flash => self.flash,
        }
    }

    /// The byte range of `len` bytes at `offset`, checked against the region.
    fn range(&self, r: Region, offset: u64, len: u64, what: &str) -> Result<std::ops::Range<usize>, SimError> {
        let size = self.region(r).len() as u64;
        let end = offset.checked_add(len).filter(|&e| e <= size).ok_or_else(|| SimError::OutOfBounds {
            what: what.to_string(),
            region: r.name(),
            start: offset,
            end: offset.saturating_add(len),
            size,
        })?;
        Ok(offset as usize..end as usize)
    }

    fn read(&self, t: &TensorRef, what: &str) -> Result<Tensor, SimError> {
        let len = t.bytes().unwrap_or(u64::MAX);
        let range = self.range(t.region, t.offset, len, what)?;
        let n: usize = t.shape.iter().product();
        let data = Data::from_le_bytes(t.dtype, &self.region(t.region)[range], n).ok_or_else(|| SimError::Decode {
            what: what.to_string(),
            reason: format!(
                "{} bytes at {}@{} are not a {} {:?} tensor",
                len,
                t.region.name(),
                t.offset,
                t.dtype,
                t.shape
            ),
        })?;
        Ok(Tensor { shape: t.shape.clone(), data })
    }

    fn write(&mut self, t: &TensorRef, value: &Tensor, what: &str) -> Result<(), SimError> {
        let bytes = value.data.to_le_bytes();
        let range = self.range(t.region, t.offset, bytes.len() as u64, what)?;
        match t.region {
            Region::Sram => self.sram[range].copy_from_slice(&bytes),
            Region::Dram => self.dram[range].copy_from_slice(&bytes),
            Region::Flash => {
                return Err(SimError::OutOfBounds {
                    what: format!("{what} (a write to flash)"),
                    region: "flash",
                    start: t.offset,
                    end: t.offset,
                    size: 0,
                })
            }
        }
        Ok(())
    }
}

/// Runs `program` on `inputs` (one per program input, in order) and returns its outputs.
pub fn simulate(program: &NpuProgram, inputs: &[Tensor]) -> Result<Vec<Tensor>, SimError> {
    // Ethos-U addresses are 32-bit: a larger memory can only come from a corrupted size,
    // which is refused rather than allocated.
    const MAX_ARENA: u64 = 1 << 32;
    let alloc = |n: u64, what: &str| -> Result<Vec<u8>, SimError> {
        if n > MAX_ARENA {
            return Err(SimError::OutOfBounds { what: what.into(), region: "host", start: 0, end: n, size: MAX_ARENA });
        }
        Ok(vec![0u8; n as usize])
    };
    let mut mem = Memory {
        sram: alloc(program.memory.sram_bytes, "SRAM arena")?,
        dram: alloc(program.memory.dram_bytes, "DRAM arena")?,
        flash: &program.constants,
    };
    if inputs.len() != program.inputs.len() {
        return Err(SimError::Input {
            index: inputs.len(),
            name: String::new(),
            expected: format!("{} inputs", program.inputs.len()),
            found: format!("{} inputs", inputs.len()),
        });
    }
    for (i, (t, d)) in inputs.iter().zip(&program.inputs).enumerate() {
        if t.dtype() != d.tensor.dtype || t.shape != d.tensor.shape {
            return Err(SimError::Input {
                index: i,
                name: d.name.clone(),
                expected: format!("{} {:?}", d.tensor.dtype, d.tensor.shape),
                found: format!("{} {:?}", t.dtype(), t.shape),
            });
        }
        mem.write(&d.tensor, t, &format!("input '{}'", d.name))?;
    }
    // Imported at the first CPU call, once.
    let mut cpu_module: Option<Module> = None;
    for (index, cmd) in program.commands.iter().enumerate() {
        let (what, name) = match cmd {
            Command::Npu(c) => (c.op.name().to_string(), c.name.clone()),
            Command::Dma { .. } => ("dma".to_string(), String::new()),
            Command::Cpu(c) => (format!("cpu subgraph {}", c.subgraph), String::new()),
        };
        let fail = |reason: String| SimError::Command { index, what: what.clone(), name: name.clone(), reason };
        match cmd {
            Command::Npu(c) => npu(program, &mut mem, c).map_err(|e| fail(e.to_string()))?,
            Command::Dma { src_region, src, dst_region, dst, len } => {
                let from = mem.range(*src_region, *src, *len, "DMA source")?;
                let bytes = mem.region(*src_region)[from].to_vec();
                let to = mem.range(*dst_region, *dst, *len, "DMA destination")?;
                match dst_region {
                    Region::Sram => mem.sram[to].copy_from_slice(&bytes),
                    Region::Dram => mem.dram[to].copy_from_slice(&bytes),
                    Region::Flash => return Err(fail("a DMA into flash".into())),
                }
            }
            Command::Cpu(c) => {
                if cpu_module.is_none() {
                    let m = npuc_tflite::import(bytes::Bytes::from(program.cpu_model.clone()))
                        .map_err(|e| fail(format!("the CPU model: {e}")))?;
                    cpu_module = Some(m);
                }
                let m = cpu_module.as_ref().ok_or_else(|| fail("no CPU model".into()))?;
                cpu(m, &mut mem, c).map_err(|e| fail(e.to_string()))?
            }
        }
    }
    program.outputs.iter().map(|d| mem.read(&d.tensor, &format!("output '{}'", d.name))).collect()
}

/// Errors inside one command, wrapped with the command's position by [`simulate`].
#[derive(Debug, Error)]
enum CmdError {
    #[error(transparent)]
    Memory(#[from] SimError),
    #[error("{0}")]
    Other(String),
}

fn other(s: impl Into<String>) -> CmdError {
    CmdError::Other(s.into())
}

/// One NPU command.
fn npu(p: &NpuProgram, mem: &mut Memory<'_>, c: &NpuCommand) -> Result<(), CmdError> {
    let mut ins: Vec<Option<(TensorType, Tensor)>> = Vec::with_capacity(c.operands.len());
    for (i, t) in c.operands.iter().enumerate() {
        ins.push(match t {
            Some(t) => Some((t.tensor_type(), mem.read(t, &format!("operand {i}"))?)),
            None => None,
        });
    }
    let out_types: Vec<TensorType> = c.outputs.iter().map(TensorRef::tensor_type).collect();
    let results = if c.op == NpuOp::Lut {
        let lut = c.lut.and_then(|i| p.luts.get(i as usize)).ok_or_else(|| other("missing lookup table"))?;
        if lut.len() != 256 {
            return Err(other(format!("lookup table has {} entries, not 256", lut.len())));
        }
        let x = ins
            .first()
            .and_then(|x| x.as_ref())
            .and_then(|(_, t)| t.as_i8())
            .ok_or_else(|| other("table input is not int8"))?;
        let y: Vec<i8> = x.iter().map(|&v| lut[(i16::from(v) + 128) as usize] as i8).collect();
        vec![Tensor { shape: c.outputs.first().ok_or_else(|| other("no result"))?.shape.clone(), data: Data::I8(y) }]
    } else {
        let op = match c.pad {
            Some(pad) => {
                let fill_min = matches!(c.op, NpuOp::MaxPool(_));
                let slot =
                    ins.first_mut().and_then(|x| x.as_mut()).ok_or_else(|| other("padded command without an IFM"))?;
                let (ty, t) = slot;
                *t = pad_nhwc(t, ty, pad, fill_min)?;
                ty.shape = t.shape.clone();
                c.op.with_valid_padding()
            }
            None => c.op.clone(),
        };
        if let Some(r) = mac_conv(p, c, &op, &ins)? {
            vec![r]
        } else {
            if c.op.has_weights() {
                let w = c.weights.as_ref().ok_or_else(|| other("weighted op without a weight stream"))?;
                let weights = decode_weights(p, w)?;
                let bias = bias_from_records(p, c, w)?;
                if ins.len() < 3 {
                    return Err(other("weighted op needs three operand slots"));
                }
                ins[1] = Some((w.tensor.tensor_type(), weights));
                ins[2] = Some(bias);
            }
            let op = op.to_ir().ok_or_else(|| other("no kernel for this command"))?;
            eval_op(&op, &ins, &out_types).map_err(other)?
        }
    };
    for (i, (t, r)) in c.outputs.iter().zip(&results).enumerate() {
        mem.write(t, r, &format!("result {i}"))?;
    }
    Ok(())
}

/// An int8 convolution computed from the records and the fused clamp ([`crate::mac`]);
/// `None` for commands it does not cover (fully connected, whose LiteRT kernel rescales in
/// double precision; 16-bit activations; weights with zero points), which run through the
/// interpreter's kernels with their records checked instead.
fn mac_conv(
    p: &NpuProgram,
    c: &NpuCommand,
    op: &NpuOp,
    ins: &[Option<(TensorType, Tensor)>],
) -> Result<Option<Tensor>, CmdError> {
    let (padding, stride, dilation, depthwise) = match op {
        NpuOp::Conv2d { padding, stride, dilation, .. } => (*padding, *stride, *dilation, false),
        NpuOp::DepthwiseConv2d { padding, stride, dilation, .. } => (*padding, *stride, *dilation, true),
        _ => return Ok(None),
    };
    let (Some(w), Some(clamp), Some(Some((ity, x))), Some(ofm)) =
        (c.weights.as_ref(), c.clamp, ins.first(), c.outputs.first())
    else {
        return Ok(None);
    };
    let zp0 = |q: &Option<npuc_ir::Quantization>| q.as_ref().is_none_or(|q| q.zero_point.iter().all(|&z| z == 0));
    if ity.dtype != DType::I8 || ofm.dtype != DType::I8 || !zp0(&w.tensor.quant) {
        return Ok(None);
    }
    let four = |s: &[usize]| -> Result<[usize; 4], CmdError> {
        s.try_into().map_err(|_| other(format!("a convolution needs 4-D tensors, got {s:?}")))
    };
    let zp = |q: &Option<npuc_ir::Quantization>| -> i32 {
        q.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0) as i32
    };
    let idx = c.scale_bias.ok_or_else(|| other("weighted op without scale/bias records"))?;
    let records: Vec<Record> = p
        .scale_bias
        .get(idx as usize)
        .ok_or_else(|| other(format!("no scale/bias record set {idx}")))?
        .iter()
        .map(Record::parse)
        .collect();
    let weights = decode_weights(p, w)?;
    let spec = ConvSpec {
        ifm: four(&x.shape)?,
        ofm: four(&ofm.shape)?,
        kernel: [w.ohwi[1], w.ohwi[2]],
        stride: stride.map(|v| v as usize),
        dilation: dilation.map(|v| v as usize),
        padding,
        depthwise,
        ifm_zp: zp(&ity.quant),
        ofm_zp: zp(&ofm.quant),
        clamp,
    };
    let xs = x.as_i8().ok_or_else(|| other("IFM is not int8"))?;
    let ws = weights.as_i8().ok_or_else(|| other("weights are not int8"))?;
    let out = conv_i8(xs, ws, &records, &spec).map_err(other)?;
    Ok(Some(Tensor { shape: ofm.shape.clone(), data: Data::I8(out) }))
}

/// An NHWC tensor with `[top, bottom, left, right]` rows and columns added, filled with the
/// zero point (a padded tap contributes nothing, as in TFLite's kernels) or, for max pooling,
/// the dtype's minimum (never the maximum of a window that has a real element).
fn pad_nhwc(t: &Tensor, ty: &TensorType, pad: [u32; 4], fill_min: bool) -> Result<Tensor, CmdError> {
    let [n, h, w, c] = match t.shape.as_slice() {
        &[n, h, w, c] => [n, h, w, c],
        s => return Err(other(format!("explicit padding needs a 4-D IFM, got {s:?}"))),
    };
    let [top, bottom, left, right] = pad.map(|v| v as usize);
    if [top, bottom, left, right].iter().any(|&p| p > 64) {
        return Err(other(format!("padding {pad:?} exceeds what a kernel can need")));
    }
    let (ph, pw) = (h + top + bottom, w + left + right);
    let zp = ty.quant.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0);
    let widen = |v: &[i64], fill: i64| -> Vec<i64> {
        let mut out = vec![fill; n * ph * pw * c];
        for b in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let src = ((b * h + y) * w + x) * c;
                    let dst = ((b * ph + y + top) * pw + x + left) * c;
                    out[dst..dst + c].copy_from_slice(&v[src..src + c]);
                }
            }
        }
        out
    };
    let data = match &t.data {
        Data::I8(v) => {
            let fill = if fill_min { i64::from(i8::MIN) } else { zp };
            let wide = widen(&v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), fill);
            Data::I8(wide.into_iter().map(|x| x as i8).collect())
        }
        Data::I16(v) => {
            let fill = if fill_min { i64::from(i16::MIN) } else { zp };
            let wide = widen(&v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), fill);
            Data::I16(wide.into_iter().map(|x| x as i16).collect())
        }
        d => return Err(other(format!("explicit padding of {} tensors", d.dtype()))),
    };
    Ok(Tensor { shape: vec![n, ph, pw, c], data })
}

/// The weights of a command: the stream decoded, the reorder undone, the zero points added.
fn decode_weights(p: &NpuProgram, w: &WeightRef) -> Result<Tensor, CmdError> {
    let stream = p.weights.get(w.stream as usize).ok_or_else(|| other(format!("no weight stream {}", w.stream)))?;
    let decoded = crate::codec::decode(stream).map_err(|e| other(format!("weight stream {}: {e}", w.stream)))?;
    let n: usize =
        w.ohwi.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| other("weight shape overflows"))?;
    if n > decoded.len() || w.tensor.shape.iter().product::<usize>() != n {
        return Err(other(format!("weight shape {:?} does not match its {} decoded values", w.ohwi, decoded.len())));
    }
    // Where each original weight went: reorder two index planes (the index + 1 in 15-bit
    // halves, so 0 still marks padding) and read the positions back.
    let params = ReorderParams {
        accelerator: w.accelerator,
        ofm_block_depth: w.ofm_block_depth,
        traversal: w.traversal,
        ifm_bits: w.ifm_bits,
        dilation: w.dilation,
    };
    let lo: Vec<i16> = (0..n).map(|i| ((i + 1) & 0x7fff) as i16).collect();
    let hi: Vec<i16> = (0..n).map(|i| ((i + 1) >> 15) as i16).collect();
    let lo = reorder(&lo, w.ohwi, &params).map_err(|e| other(e.to_string()))?;
    let hi = reorder(&hi, w.ohwi, &params).map_err(|e| other(e.to_string()))?;
    if decoded.len() != lo.len() {
        return Err(other(format!(
            "weight stream {} decodes to {} values, the reorder needs {}",
            w.stream,
            decoded.len(),
            lo.len()
        )));
    }
    let mut ohwi = vec![0i16; n];
    for ((&l, &h), &v) in lo.iter().zip(&hi).zip(&decoded) {
        let idx = (h as usize) << 15 | l as usize;
        if idx > 0 {
            ohwi[idx - 1] = v;
        }
    }
    let [o, kh, kw, _] = w.ohwi;
    let q = w.tensor.quant.clone().unwrap_or_default();
    let zp = |c: usize| match q.zero_point.len() {
        0 => 0,
        1 => q.zero_point[0],
        _ => q.zero_point.get(c).copied().unwrap_or(0),
    };
    let per = n / o.max(1);
    let depthwise = w.tensor.shape.len() == 4
        && w.tensor.shape[0] == 1
        && w.ohwi[3] == 1
        && w.traversal == crate::reorder::Traversal::Depthwise;
    let mut out = vec![0i8; n];
    for (i, &v) in ohwi.iter().enumerate() {
        let c = i / per.max(1);
        let value = i64::from(v).saturating_add(zp(c));
        let value = i8::try_from(value).map_err(|_| other(format!("decoded weight {value} is outside int8")))?;
        // Depthwise filters are stored 1HWC: channel innermost.
        let dst = if depthwise { (i % (kh * kw)) * o + c } else { i };
        out[dst] = value;
    }
    Ok(Tensor { shape: w.tensor.shape.clone(), data: Data::I8(out) })
}

/// The bias operand rebuilt from the records, after checking each record's multiplier and
/// shift against the quantization the command carries.
fn bias_from_records(p: &NpuProgram, c: &NpuCommand, w: &WeightRef) -> Result<(TensorType, Tensor), CmdError> {
    let idx = c.scale_bias.ok_or_else(|| other("weighted op without scale/bias records"))?;
    let records = p.scale_bias.get(idx as usize).ok_or_else(|| other(format!("no scale/bias record set {idx}")))?;
    let channels = w.ohwi[0];
    if records.len() != channels {
        return Err(other(format!("{} scale/bias records for {channels} channels", records.len())));
    }
    let scale = |t: Option<&TensorRef>, what: &str| {
        t.and_then(|t| t.quant.as_ref())
            .and_then(|q| q.scale.first().copied())
            .ok_or_else(|| other(format!("{what} is not quantized")))
    };
    let in_scale = scale(c.operands.first().and_then(|t| t.as_ref()), "input")?;
    let out_scale = scale(c.outputs.first(), "output")?;
    let wq = w.tensor.quant.clone().unwrap_or_default();
    let mut bias = Vec::with_capacity(channels);
    for (ch, r) in records.iter().enumerate() {
        let b = i64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], 0, 0, 0]) << 24 >> 24;
        let multiplier = u32::from_le_bytes([r[5], r[6], r[7], r[8]]);
        let shift = 31 - i32::from(r[9]);
        let ws = match wq.scale.len() {
            1 => wq.scale[0],
            _ => *wq.scale.get(ch).ok_or_else(|| other(format!("no weight scale for channel {ch}")))?,
        };
        let m = quantize_multiplier(f64::from(in_scale) * f64::from(ws) / f64::from(out_scale));
        if i64::from(m.multiplier) != i64::from(multiplier) || m.shift != shift {
            return Err(other(format!(
                "scale/bias record {idx} channel {ch}: multiplier {multiplier}·2^{shift} differs from the quantization's \
                 {}·2^{}",
                m.multiplier, m.shift
            )));
        }
        bias.push(b);
    }
    let ifm16 = c.operands.first().and_then(|t| t.as_ref()).is_some_and(|t| t.dtype == DType::I16);
    let (dtype, data) = if ifm16 {
        (DType::I64, Data::I64(bias))
    } else {
        let b32 = bias
            .iter()
            .map(|&b| i32::try_from(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| other("an int8 bias exceeds int32"))?;
        (DType::I32, Data::I32(b32))
    };
    Ok((TensorType::new(dtype, vec![channels]), Tensor { shape: vec![channels], data }))
}

/// One CPU command: a subgraph of the embedded model run by the interpreter on tensors read
/// from memory.
fn cpu(module: &Module, mem: &mut Memory<'_>, c: &CpuCall) -> Result<(), CmdError> {
    let g = module
        .graphs
        .get(c.subgraph as usize)
        .ok_or_else(|| other(format!("the CPU model has {} subgraphs, not {}", module.graphs.len(), c.subgraph + 1)))?;
    let interp = Interpreter::new(g, &Options { threads: 1 }).map_err(|e| other(e.to_string()))?;
    let inputs = c
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| mem.read(t, &format!("CPU input {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = interp.run(inputs).map_err(|e| other(e.to_string()))?;
    if outs.len() != c.outputs.len() {
        return Err(other(format!(
            "CPU model produced {} outputs, the command places {}",
            outs.len(),
            c.outputs.len()
        )));
    }
    for (i, (t, r)) in c.outputs.iter().zip(&outs).enumerate() {
        if r.dtype() != t.dtype || r.shape != t.shape {
            return Err(other(format!(
                "CPU output {i} is {} {:?}, the command expects {} {:?}",
                r.dtype(),
                r.shape,
                t.dtype,
                t.shape
            )));
        }
        mem.write(t, r, &format!("CPU output {i}"))?;
    }
    Ok(())
}
