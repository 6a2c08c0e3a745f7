//! Quantization parameter arithmetic: activation scale/zero point from a range, and
//! per-channel symmetric weight and bias quantization.
//!
//! Conventions follow the TFLite 8-bit quantization specification
//! (<https://ai.google.dev/edge/litert/models/quantization_spec>): activations are int8
//! asymmetric per tensor with `real = scale * (q - zp)` and 0 exactly representable;
//! weights are int8 symmetric per output channel, narrow range `[-127, 127]`, zp 0; biases
//! are int32 with `scale = input_scale * weight_scale` and zp 0. The 16x8 mode uses int16
//! symmetric activations (zp 0) and int64 biases.

/// Scale given to a weight channel whose weights are all zero: the spec requires positive
/// scales, and with no weights to represent any positive value is exact.
pub const ZERO_CHANNEL_SCALE: f32 = 1e-9;

/// Integer activation type of the quantized graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActType {
    /// int8 asymmetric.
    Int8,
    /// int16 symmetric (TFLite 16x8 mode).
    Int16,
}

/// Per-tensor activation parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActParams {
    /// Scale (> 0).
    pub scale: f32,
    /// Zero point.
    pub zero_point: i64,
}

impl ActParams {
    /// Quantizes one real value with these parameters, saturating to the type's range.
    pub fn quantize(&self, x: f32, act: ActType) -> i64 {
        let (lo, hi) = act.range();
        ((x as f64 / self.scale as f64).round() as i64 + self.zero_point).clamp(lo, hi)
    }
}

impl ActType {
    /// The integer range of the type.
    pub fn range(self) -> (i64, i64) {
        match self {
            ActType::Int8 => (-128, 127),
            ActType::Int16 => (-32768, 32767),
        }
    }
}

/// Activation parameters for the real range `[min, max]` (extended to include 0).
///
/// int8: `scale = (max - min) / 255`, `zp = round(-128 - min / scale)` clamped to
/// `[-128, 127]`, which nudges the range so 0 is exactly representable. int16: symmetric,
/// `scale = max(|min|, |max|) / 32767`, zp 0. An empty range (all zeros) gets the scale of
/// `[0, 1]` so downstream multipliers stay ordinary.
pub fn act_params(min: f32, max: f32, act: ActType) -> ActParams {
    let (min, max) = (min.min(0.0) as f64, max.max(0.0) as f64);
    match act {
        ActType::Int8 => {
            let width = max - min;
            if width.is_nan() || width <= 0.0 || !width.is_finite() {
                return ActParams { scale: 1.0 / 255.0, zero_point: -128 };
            }
            let scale = width / 255.0;
            let zp = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i64;
            ActParams { scale: scale as f32, zero_point: zp }
        }
        ActType::Int16 => {
            let m = min.abs().max(max.abs());
            if m.is_nan() || m <= 0.0 || !m.is_finite() {
                return ActParams { scale: 1.0 / 32767.0, zero_point: 0 };
            }
            ActParams { scale: (m / 32767.0) as f32, zero_point: 0 }
        }
    }
}

/// Largest magnitude of a `bits`-bit narrow-range symmetric weight: 127, 7 or 1.
pub fn weight_qmax(bits: u32) -> i32 {
    (1i32 << (bits - 1)) - 1
}

/// Per-channel symmetric weights, stored as int8.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantWeights {
    /// Quantized values, in the original layout.
    pub values: Vec<i8>,
    /// One positive scale per channel.
    pub scales: Vec<f32>,
}

/// The number of channels and the (outer, inner) strides of `axis` in a row-major tensor of
/// `shape`: element `i` belongs to channel `(i / inner) % channels`.
pub fn channel_layout(shape: &[usize], axis: usize) -> (usize, usize) {
    let channels = shape.get(axis).copied().unwrap_or(1).max(1);
    let inner: usize = shape.iter().skip(axis + 1).product();
    (channels, inner.max(1))
}

/// Quantizes `w` (row-major, `shape`) per channel along `axis` to `bits` bits, narrow range:
/// `scale_c = max|w_c| / qmax`, raised where needed to `min_scales[c]` (so a bias stays
/// within its integer range). All-zero channels get [`ZERO_CHANNEL_SCALE`].
pub fn quantize_weights(
    w: &[f32],
    shape: &[usize],
    axis: usize,
    bits: u32,
    min_scales: Option<&[f32]>,
) -> QuantWeights {
    let (channels, inner) = channel_layout(shape, axis);
    let qmax = weight_qmax(bits) as f32;
    let mut absmax = vec![0f32; channels];
    for (i, &x) in w.iter().enumerate() {
        let c = (i / inner) % channels;
        if x.is_finite() {
            absmax[c] = absmax[c].max(x.abs());
        }
    }
    let scales: Vec<f32> = absmax
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            let s = if m > 0.0 { m / qmax } else { ZERO_CHANNEL_SCALE };
            let floor = min_scales.and_then(|f| f.get(c)).copied().unwrap_or(0.0);
            s.max(floor).max(ZERO_CHANNEL_SCALE)
        })
        .collect();
    let values = w
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let s = scales[(i / inner) % channels];
            let x = if x.is_finite() { x } else { 0.0 };
            // In f32, as TensorFlow's quantizer divides: f64 rounds a few near-ties the
            // other way, and matching the converter weight for weight is what makes the
            // side-by-side comparison (tools/compare-quantization.py) about method alone.
            (x / s).round().clamp(-qmax, qmax) as i8
        })
        .collect();
    QuantWeights { values, scales }
}

/// The smallest weight scale per channel that keeps `bias[c] / (input_scale * w_scale)`
/// within `±bias_max` (with a relative margin of 0.1% for f32 rounding of the scales): TFLite's quantizer raises weight
/// scales in the same situation rather than let a bias overflow.
pub fn bias_min_weight_scales(bias: &[f32], input_scale: f32, bias_max: f64) -> Vec<f32> {
    bias.iter()
        .map(|&b| {
            let b = if b.is_finite() { b.abs() as f64 } else { 0.0 };
            let s = b / (input_scale as f64 * bias_max * 0.999);
            // Round up to the next f32 so the stored scale really satisfies the bound.
            let f = s as f32;
            if (f as f64) < s {
                f32::from_bits(f.to_bits() + 1)
            } else {
                f
            }
        })
        .collect()
}

/// Quantizes a bias per channel with scales `input_scale * w_scales[c]` to integers within
/// `±bias_max` (saturating; [`bias_min_weight_scales`] makes saturation unnecessary).
/// Returns the integers and their scales (as stored: f32).
pub fn quantize_bias(bias: &[f32], input_scale: f32, w_scales: &[f32], bias_max: i64) -> (Vec<i64>, Vec<f32>) {
    let scales: Vec<f32> = bias
        .iter()
        .enumerate()
        .map(|(c, _)| {
            let ws = w_scales.get(c).or(w_scales.first()).copied().unwrap_or(1.0);
            (input_scale as f64 * ws as f64) as f32
        })
        .collect();
    let values = bias
        .iter()
        .zip(&scales)
        .map(|(&b, &s)| {
            let b = if b.is_finite() { b as f64 } else { 0.0 };
            (b / s as f64).round().clamp(-(bias_max as f64), bias_max as f64) as i64
        })
        .collect();
    (values, scales)
}

/// Signal-to-quantization-noise ratio in dB of `approx` against `reference`
/// (`10 log10(Σ ref² / Σ (ref - approx)²)`); infinite when they are equal.
pub fn sqnr_db(reference: &[f32], approx: &[f32]) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for (&r, &a) in reference.iter().zip(approx) {
        s += (r as f64) * (r as f64);
        n += (r as f64 - a as f64).powi(2);
    }
    if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_params_nudge_zero_to_an_integer() {
        let p = act_params(-1.0, 3.0, ActType::Int8);
        assert!((p.scale - 4.0 / 255.0).abs() < 1e-7);
        // -128 - (-1)/(4/255) = -128 + 63.75 = -64.25 -> -64
        assert_eq!(p.zero_point, -64);
        // 0 is exact: q = zp dequantizes to 0.
        assert_eq!(p.quantize(0.0, ActType::Int8), -64);
        assert_eq!(p.scale * (p.quantize(0.0, ActType::Int8) - p.zero_point) as f32, 0.0);
    }

    #[test]
    fn ranges_are_extended_to_zero() {
        let p = act_params(2.0, 6.0, ActType::Int8);
        assert!((p.scale - 6.0 / 255.0).abs() < 1e-7);
        assert_eq!(p.zero_point, -128);
        let n = act_params(-6.0, -2.0, ActType::Int8);
        assert_eq!(n.zero_point, 127);
    }

    #[test]
    fn int16_params_are_symmetric() {
        let p = act_params(-3.0, 1.5, ActType::Int16);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 3.0 / 32767.0).abs() < 1e-9);
    }

    #[test]
    fn empty_range_gets_a_positive_scale() {
        let p = act_params(0.0, 0.0, ActType::Int8);
        assert!(p.scale > 0.0);
        assert_eq!(p.quantize(0.0, ActType::Int8), p.zero_point);
    }

    #[test]
    fn per_channel_weights_and_zero_channels() {
        // shape [3, 2]: channel 0 = [1, -0.5], channel 1 = zeros, channel 2 = [0.1, 0.2]
        let w = [1.0, -0.5, 0.0, 0.0, 0.1, 0.2];
        let q = quantize_weights(&w, &[3, 2], 0, 8, None);
        assert_eq!(q.scales.len(), 3);
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q.scales[1], ZERO_CHANNEL_SCALE);
        assert!((q.scales[2] - 0.2 / 127.0).abs() < 1e-9);
        assert_eq!(q.values, vec![127, -64, 0, 0, 64, 127]);
        let q4 = quantize_weights(&w, &[3, 2], 0, 4, None);
        // -0.5 / f32(1/7) is just above -3.5, so it rounds to -3.
        assert_eq!(q4.values, vec![7, -3, 0, 0, 4, 7]);
        let q2 = quantize_weights(&w, &[3, 2], 0, 2, None);
        assert_eq!(q2.values, vec![1, -1, 0, 0, 1, 1]);
    }

    #[test]
    fn depthwise_axis_is_the_last() {
        // [1, 1, 2, 2] with axis 3: channel 0 = [2, 1], channel 1 = [0.5, -1]
        let w = [2.0, 0.5, 1.0, -1.0];
        let q = quantize_weights(&w, &[1, 1, 2, 2], 3, 8, None);
        assert!((q.scales[0] - 2.0 / 127.0).abs() < 1e-9);
        assert!((q.scales[1] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q.values, vec![127, 64, 64, -127]);
    }

    #[test]
    fn large_bias_raises_the_weight_scale_instead_of_overflowing() {
        let bias = [1e6f32, 0.0];
        let floor = bias_min_weight_scales(&bias, 1e-3, i32::MAX as f64);
        // A zero-weight channel with a big bias: the tiny scale would overflow int32.
        let q = quantize_weights(&[0.0, 0.0, 0.0, 0.0], &[2, 2], 0, 8, Some(&floor));
        let (b, s) = quantize_bias(&bias, 1e-3, &q.scales, i32::MAX as i64);
        assert!(b[0].abs() < i32::MAX as i64, "{b:?}");
        assert!(((b[0] as f64 * s[0] as f64) - 1e6).abs() / 1e6 < 1e-6);
        assert_eq!(b[1], 0);
    }

    #[test]
    fn sqnr_of_exact_and_noisy() {
        assert!(sqnr_db(&[1.0, 2.0], &[1.0, 2.0]).is_infinite());
        let s = sqnr_db(&[1.0, 1.0], &[1.1, 0.9]);
        assert!((s - 20.0).abs() < 1e-4, "{s}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn weights_and_biases_stay_in_range(
            w in proptest::collection::vec(-100.0f32..100.0, 1..64),
            channels in 1usize..5,
            bits in prop_oneof![Just(8u32), Just(4u32), Just(2u32)],
            bias in proptest::collection::vec(-1e4f32..1e4, 5),
            in_scale in 1e-5f32..1.0,
            zero_channel in any::<bool>(),
        ) {
            let per = w.len().div_ceil(channels);
            let mut w: Vec<f32> = w.iter().cycle().take(per * channels).copied().collect();
            if zero_channel {
                w[..per].iter_mut().for_each(|x| *x = 0.0);
            }
            let bias = &bias[..channels];
            let floor = bias_min_weight_scales(bias, in_scale, i32::MAX as f64);
            let q = quantize_weights(&w, &[channels, per], 0, bits, Some(&floor));
            let qmax = weight_qmax(bits);
            prop_assert!(q.scales.iter().all(|&s| s > 0.0 && s.is_finite()));
            prop_assert!(q.values.iter().all(|&v| (v as i32).abs() <= qmax));
            for (i, (&x, &v)) in w.iter().zip(&q.values).enumerate() {
                let s = q.scales[i / per];
                prop_assert!((x - v as f32 * s).abs() <= s / 2.0 * 1.0001 + 1e-12, "w {} q {} s {}", x, v, s);
            }
            let (ints, scales) = quantize_bias(bias, in_scale, &q.scales, i32::MAX as i64);
            for ((&b, &i), &s) in bias.iter().zip(&ints).zip(&scales) {
                prop_assert!(i > i32::MIN as i64 && i < i32::MAX as i64, "bias {} -> {}", b, i);
                prop_assert!((b as f64 - i as f64 * s as f64).abs() <= s as f64, "bias {} -> {} * {}", b, i, s);
            }
        }
    }
}
