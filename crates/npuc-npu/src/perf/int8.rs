//! Costing a graph as the int8 graph the NPU runs: float graphs partitioned as int8, and
//! weights as the zero-point-free int8 values the weight stream carries (quantized from
//! float where needed), for the Ethos-U configuration of a target.

use std::borrow::Cow;

use npuc_ir::graph::{Graph, Value, ValueId};
use npuc_ir::types::DType;

/// `g` with every float tensor retyped as int8: the graph the NPU would run after
/// quantization, for partitioning only (constants are shared, not copied).
pub(super) fn int8_view(g: &Graph) -> Cow<'_, Graph> {
    let is_float = |id: ValueId| g.value(id).ty.dtype.is_float();
    if !g.value_ids().any(is_float) {
        return Cow::Borrowed(g);
    }
    let mut view = g.clone();
    let ids: Vec<ValueId> = view.value_ids().collect();
    for id in ids {
        if view.value(id).ty.dtype.is_float() {
            view.value_mut(id).ty.dtype = DType::I8;
        }
    }
    Cow::Owned(view)
}

/// Weights as the zero-point-free values the stream carries. Float weights are quantized
/// symmetric int8 per slice of the outermost dimension (the output channel of OHWI
/// filters; the whole tensor for depthwise `[1, H, W, C]`), as the NPU would receive them.
/// Elided constants (no data) cost as incompressible: every value distinct and non-zero.
pub(super) fn weight_values(val: &Value, channels: usize, n: usize) -> Result<Vec<i16>, String> {
    let Some(bytes) = val.data.as_ref().and_then(|c| c.bytes()) else {
        return Ok((0..n).map(|i| (i % 251) as i16 - 125).collect());
    };
    let zp = val.ty.quant.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0);
    let out: Vec<i16> = match val.ty.dtype {
        DType::I8 => bytes.iter().map(|&b| i16::from(b as i8) - zp as i16).collect(),
        DType::U8 => bytes.iter().map(|&b| b as i16 - zp as i16).collect(),
        DType::F32 => {
            let f: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            quantize_per_channel(&f, channels)
        }
        DType::F16 => {
            let f: Vec<f32> = bytes.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect();
            quantize_per_channel(&f, channels)
        }
        other => return Err(format!("weights of dtype {} cannot be encoded", other.name())),
    };
    if out.len() != n {
        return Err(format!("weights hold {} values, shape needs {n}", out.len()));
    }
    Ok(out)
}

/// Symmetric per-output-channel int8 quantization (channel = outermost dimension).
fn quantize_per_channel(f: &[f32], channels: usize) -> Vec<i16> {
    let per = f.len() / channels.max(1);
    f.chunks(per.max(1))
        .flat_map(|ch| {
            let max = ch.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            ch.iter().map(move |v| (v / scale).round().clamp(-127.0, 127.0) as i16)
        })
        .collect()
}

/// IEEE half to single precision (weights of `_f16` models).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 => f32::INFINITY,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_quantization_uses_the_full_int8_range() {
        let q = quantize_per_channel(&[0.5, -1.0, 0.25, 2.0, 0.0, -2.0], 2);
        assert_eq!(q, vec![64, -127, 32, 127, 0, -127]);
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
    }
}
