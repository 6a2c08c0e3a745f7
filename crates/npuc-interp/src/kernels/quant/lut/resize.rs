//! RESIZE_BILINEAR (`resize_bilinear.cc`, reference/resize_bilinear.h).
//!
//! The reference resolver runs `ResizeBilinearInteger` for int8 and int16: source
//! coordinates in 10-bit fixed point (`scale_10`), weights that are not clamped (with
//! half-pixel centres the first row/column extrapolates), a 20-bit product rounded half
//! away from zero and a plain narrowing cast (no saturation). uint8 runs the float
//! `ResizeBilinear` with a 0.5 rounding offset. Measured on LiteRT 2.3: the builtin
//! optimized kernels (resolver without delegates) agree for int8 and int16 but differ by one
//! unit now and then for uint8; the default resolver's XNNPACK delegate differs for int8
//! and uint8.

use npuc_ir::{DType, ResizeAttrs};

use super::gemmlowp::f32_to_i32;
use super::{ensure, from_ints, ints, unsupported};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

const OP: &str = "RESIZE_BILINEAR";

/// RESIZE_BILINEAR of a quantized NHWC tensor to the size given by operand 1.
pub(super) fn resize_bilinear(cx: &KernelCtx<'_>, attrs: &ResizeAttrs) -> Result<Vec<Tensor>, KernelError> {
    let x = cx.input(0)?;
    let size = cx.input(1)?;
    let out = cx.output_type(0)?;
    ensure(x.shape.len() == 4, OP, || format!("the input must be 4-D, got {:?}", x.shape))?;
    ensure(x.dtype() == out.dtype, OP, || format!("operand is {} but the result is {}", x.dtype(), out.dtype))?;
    let size = size
        .to_i64_vec()
        .filter(|s| s.len() == 2 && size.dtype() == DType::I32)
        .ok_or_else(|| KernelError::new(format!("{OP}: the size operand must be 2 int32 values")))?;
    ensure(size[0] > 0 && size[1] > 0, OP, || format!("output size {size:?} is not positive"))?;
    ensure(!(attrs.half_pixel_centers && attrs.align_corners), OP, || {
        "If half_pixel_centers is True, align_corners must be False".into()
    })?;
    let (batches, in_h, in_w, depth) = (x.shape[0], x.shape[1] as i32, x.shape[2] as i32, x.shape[3]);
    let (out_h, out_w) = (size[0] as i32, size[1] as i32);
    let shape = vec![batches, out_h as usize, out_w as usize, depth];
    if out.shape != shape {
        return Err(KernelError::new(format!(
            "{OP}: result is declared {:?} but the size operand gives {shape:?}",
            out.shape
        )));
    }
    let v = ints(x).ok_or_else(|| unsupported(OP, x.dtype()))?;
    let geometry = Geometry { in_h, in_w, out_h, out_w, depth, batches };
    let values = match x.dtype() {
        // Later TFLite sources add uint16 to the integer path; LiteRT 2.3 refuses it.
        DType::I8 | DType::I16 => resize_integer(&v, &geometry, attrs),
        DType::U8 => resize_float(&v, &geometry, attrs),
        other => return Err(unsupported(OP, other)),
    };
    Ok(vec![from_ints(out.dtype, shape, values)?])
}

struct Geometry {
    in_h: i32,
    in_w: i32,
    out_h: i32,
    out_w: i32,
    depth: usize,
    batches: usize,
}

impl Geometry {
    fn input_index(&self, b: usize, y: i32, x: i32, c: usize) -> usize {
        ((b * self.in_h as usize + y as usize) * self.in_w as usize + x as usize) * self.depth + c
    }
}

/// `ComputeInterpolationValuesInteger`: the 10-bit source coordinate and its bounds.
fn interpolation_integer(value: i32, scale_10: i32, half_pixel_centers: bool, input_size: i32) -> (i32, i32, i32) {
    let scaled = if half_pixel_centers {
        value.wrapping_mul(scale_10).wrapping_add(scale_10 / 2).wrapping_sub(1 << 9)
    } else {
        value.wrapping_mul(scale_10)
    };
    let lower = (scaled / (1 << 10)).max(0);
    let upper = (scaled.wrapping_add((1 << 10) - 1) / (1 << 10)).min(input_size - 1);
    (scaled, lower, upper)
}

/// `scale_10` of one axis: `in/out` (or `(in-1)/(out-1)` with aligned corners) in Q10.
fn scale_10(input: i32, output: i32, align_corners: bool) -> i32 {
    if align_corners && output > 1 {
        ((1 << 10) * (input - 1) + (output - 1) / 2) / (output - 1)
    } else {
        ((1 << 10) * input + output / 2) / output
    }
}

/// The source taps of each output index along one axis of int8/int16 RESIZE_BILINEAR:
/// `(lower, upper, fraction)` with the fraction in Q10 (`ResizeBilinearInteger`'s `dy`),
/// so an output is `(v[lower]·(1024 - f) + v[upper]·f)` per axis, for back ends that
/// must resize exactly as the kernel does.
pub fn bilinear_taps_q10(
    input: usize,
    output: usize,
    align_corners: bool,
    half_pixel_centers: bool,
) -> Vec<(i32, i32, i32)> {
    let (input, output) = (input as i32, output as i32);
    let scale = scale_10(input, output, align_corners);
    (0..output)
        .map(|o| {
            let (scaled, lower, upper) = interpolation_integer(o, scale, half_pixel_centers, input);
            (lower, upper, scaled - (1 << 10) * lower)
        })
        .collect()
}

/// `reference_ops::ResizeBilinearInteger` (double-rounding build).
fn resize_integer(v: &[i32], g: &Geometry, attrs: &ResizeAttrs) -> Vec<i32> {
    let height_scale_10 = scale_10(g.in_h, g.out_h, attrs.align_corners);
    let width_scale_10 = scale_10(g.in_w, g.out_w, attrs.align_corners);
    let mut out = Vec::with_capacity(g.batches * (g.out_h * g.out_w) as usize * g.depth);
    for b in 0..g.batches {
        for y in 0..g.out_h {
            let (input_y, y0, y1) = interpolation_integer(y, height_scale_10, attrs.half_pixel_centers, g.in_h);
            let dy = i64::from(input_y - (1 << 10) * y0);
            for x in 0..g.out_w {
                let (input_x, x0, x1) = interpolation_integer(x, width_scale_10, attrs.half_pixel_centers, g.in_w);
                let dx = i64::from(input_x - (1 << 10) * x0);
                for c in 0..g.depth {
                    let at = |yy: i32, xx: i32| i64::from(v[g.input_index(b, yy, xx, c)]);
                    let output_20 = at(y0, x0) * ((1 << 10) - dy) * ((1 << 10) - dx)
                        + at(y1, x0) * dy * ((1 << 10) - dx)
                        + at(y0, x1) * ((1 << 10) - dy) * dx
                        + at(y1, x1) * dy * dx;
                    let round = if output_20 > 0 { 1i64 << 19 } else { -(1i64 << 19) };
                    out.push(((output_20 + round) / (1 << 20)) as i32);
                }
            }
        }
    }
    out
}

/// `ComputeInterpolationValues` (float).
fn interpolation_float(value: i32, scale: f32, half_pixel_centers: bool, input_size: i32) -> (f32, i32, i32) {
    let scaled = if half_pixel_centers { (value as f32 + 0.5) * scale - 0.5 } else { value as f32 * scale };
    let lower = f32_to_i32(scaled.floor()).max(0);
    let upper = f32_to_i32(scaled.ceil()).min(input_size - 1);
    (scaled, lower, upper)
}

/// `reference_ops::ResizeBilinear<uint8_t>`: float weights, +0.5, truncating cast.
fn resize_float(v: &[i32], g: &Geometry, attrs: &ResizeAttrs) -> Vec<i32> {
    let axis_scale = |input: i32, output: i32| {
        if attrs.align_corners && output > 1 {
            (input - 1) as f32 / (output - 1) as f32
        } else {
            input as f32 / output as f32
        }
    };
    let height_scale = axis_scale(g.in_h, g.out_h);
    let width_scale = axis_scale(g.in_w, g.out_w);
    let mut out = Vec::with_capacity(g.batches * (g.out_h * g.out_w) as usize * g.depth);
    for b in 0..g.batches {
        for y in 0..g.out_h {
            let (input_y, y0, y1) = interpolation_float(y, height_scale, attrs.half_pixel_centers, g.in_h);
            let dy = input_y - y0 as f32;
            for x in 0..g.out_w {
                let (input_x, x0, x1) = interpolation_float(x, width_scale, attrs.half_pixel_centers, g.in_w);
                let dx = input_x - x0 as f32;
                for c in 0..g.depth {
                    let at = |yy: i32, xx: i32| v[g.input_index(b, yy, xx, c)] as f32;
                    let interpolation = at(y0, x0) * (1.0 - dy) * (1.0 - dx)
                        + at(y1, x0) * dy * (1.0 - dx)
                        + at(y0, x1) * (1.0 - dy) * dx
                        + at(y1, x1) * dy * dx
                        + 0.5;
                    out.push(f32_to_i32(interpolation));
                }
            }
        }
    }
    out
}
