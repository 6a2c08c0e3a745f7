//! TFLite's lookup tables: `LUTPopulate` (common.h) and `LUTLookup`.
//!
//! Tables are built exactly as TFLite's Prepare builds them: the transform is evaluated on
//! dequantized inputs in the same float type (f32 unless a kernel asks for f64), in the same
//! order of operations, with `TfLiteRound` (half away from zero) and the same clamping, so
//! that every entry is identical. The transforms call the platform's `expf`/`tanhf`/...,
//! the same libm functions the LiteRT build calls.

/// An 8-bit table (`LUTPopulateInt8`), indexed by `value - min` of the integer type whose
/// range is `[min, max]` (int8: -128..=127, uint8: 0..=255).
pub(crate) struct Lut8 {
    min: i32,
    entries: [i32; 256],
}

impl Lut8 {
    /// Builds the table for `transform` between the given input and output quantizations.
    pub(crate) fn new(
        (min, max): (i32, i32),
        input_scale: f32,
        input_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        transform: impl Fn(f32) -> f32,
    ) -> Lut8 {
        let inverse_scale = 1.0f32 / output_scale;
        let mut entries = [0i32; 256];
        for val in min..=max {
            let dequantized = input_scale * (val.wrapping_sub(input_zero_point)) as f32;
            let transformed = transform(dequantized);
            let rescaled = (transformed * inverse_scale).round();
            // Out-of-range values (exp overflowing to inf) saturate: LiteRT's build clamps
            // them to the type's range rather than producing cvttss2si's INT_MIN.
            let quantized = (rescaled + output_zero_point as f32) as i32;
            entries[(val - min) as usize] = quantized.min(max).max(min);
        }
        Lut8 { min, entries }
    }

    /// `LUTLookup` for an 8-bit value (widened to i32).
    #[inline]
    pub(crate) fn get(&self, value: i32) -> i32 {
        self.entries[(value - self.min) as usize]
    }
}

/// Number of entries of an int16 table: 512 segments plus the end point.
pub(crate) const LUT16_SIZE: usize = 513;

macro_rules! lut16_populate {
    ($name:ident, $float:ty) => {
        /// `LUTPopulateInt16` with this float type: 512 samples of `transform` over the
        /// input range, each biased so that linear interpolation is right at the midpoint.
        pub(crate) fn $name(
            input_scale: $float,
            input_zero_point: i32,
            output_scale: $float,
            output_zero_point: i32,
            transform: impl Fn($float) -> $float,
        ) -> [i16; LUT16_SIZE] {
            let input_min = input_scale * (-32768i32).wrapping_sub(input_zero_point) as $float;
            let input_max = input_scale * 32767i32.wrapping_sub(input_zero_point) as $float;
            let output_min = output_scale * (-32768i32).wrapping_sub(output_zero_point) as $float;
            let output_max = output_scale * 32767i32.wrapping_sub(output_zero_point) as $float;
            const NB_STEPS: i32 = 512;
            let step = (input_max - input_min) / NB_STEPS as $float;
            let half_step = step / 2.0;
            let output_scaling_inv = 65536.0 as $float / (output_max - output_min);
            let table_min = -32768.0 as $float;
            let table_max = 32767.0 as $float;
            // std::min/std::max as TFLite calls them (a NaN first argument survives).
            let clamp = |v: $float| {
                let v = if v < table_min { table_min } else { v };
                if table_max < v {
                    table_max
                } else {
                    v
                }
            };
            let mut lut = [0i16; LUT16_SIZE];
            for i in 0..NB_STEPS {
                let val = transform(input_min + i as $float * step);
                let val_midpoint = transform(input_min + i as $float * step + half_step);
                let val_next = transform(input_min + (i + 1) as $float * step);
                let sample_val = (val * output_scaling_inv).round();
                let midpoint_interp_val =
                    ((val_next * output_scaling_inv + (val * output_scaling_inv).round()) / 2.0).round();
                let midpoint_val = (val_midpoint * output_scaling_inv).round();
                let midpoint_err = midpoint_interp_val - midpoint_val;
                let bias = (midpoint_err / 2.0).round();
                lut[i as usize] = to_i16(clamp(sample_val - bias) as f64);
            }
            lut[NB_STEPS as usize] = to_i16(clamp((transform(input_max) * output_scaling_inv).round()) as f64);
            lut
        }
    };
}

lut16_populate!(lut16_f32, f32);
lut16_populate!(lut16_f64, f64);

/// `static_cast<int16_t>` of a float on x86-64: convert to int32 (`cvtt*2si`), keep the
/// low 16 bits.
fn to_i16(v: f64) -> i16 {
    super::gemmlowp::f64_to_i32(v) as i16
}

/// `LUTLookup(int16_t, const int16_t*)`: the high 9 bits select a segment, the low 7
/// interpolate linearly.
#[inline]
pub(crate) fn lookup16(value: i16, lut: &[i16; LUT16_SIZE]) -> i16 {
    let index = (256 + (i32::from(value) >> 7)) as usize;
    let offset = i32::from(value & 0x7f);
    let base = lut[index];
    let slope = lut[index + 1].wrapping_sub(base);
    let delta = (i32::from(slope) * offset + 64) >> 7;
    (i32::from(base) + delta) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_identity_table() {
        let t = Lut8::new((-128, 127), 0.5, 3, 0.5, 3, |x| x);
        for v in -128..=127 {
            assert_eq!(t.get(v), v);
        }
    }

    #[test]
    fn int16_table_interpolates_linear_functions_exactly() {
        let s = 1.0f32 / 32768.0;
        let lut = lut16_f32(s, 0, s, 0, |x| x);
        for v in [-32768i16, -1000, -1, 0, 1, 77, 32000, 32767] {
            assert!((i32::from(lookup16(v, &lut)) - i32::from(v)).abs() <= 1, "{v}");
        }
    }
}
