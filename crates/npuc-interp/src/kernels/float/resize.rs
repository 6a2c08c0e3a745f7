//! RESIZE_BILINEAR.

use npuc_ir::ResizeAttrs;

use super::{dims4, for_row_blocks, input_f32, output_shape, single_output, KResult, KernelCtx};
use crate::error::KernelError;

/// Source coordinate and the two neighbours of output index `i`, exactly as
/// reference_ops::ComputeInterpolationValues computes them in f32.
fn interpolation(i: usize, scale: f32, half_pixel_centers: bool, in_size: usize) -> (f32, usize, usize) {
    let v = i as f32;
    let scaled = if half_pixel_centers { (v + 0.5) * scale - 0.5 } else { v * scale };
    let lo = (scaled.floor() as i64).max(0) as usize;
    let hi = (scaled.ceil() as i64).min(in_size as i64 - 1).max(0) as usize;
    (scaled, lo, hi)
}

/// The scale from output to input coordinates along one dimension.
fn scale(in_size: usize, out_size: usize, align_corners: bool) -> f32 {
    if align_corners && out_size > 1 {
        (in_size as f32 - 1.0) / (out_size as f32 - 1.0)
    } else {
        in_size as f32 / out_size as f32
    }
}

/// RESIZE_BILINEAR (reference_ops::ResizeBilinear, float): every output pixel interpolates
/// its four neighbours with the reference kernel's weights and the same order of operations.
pub(super) fn resize_bilinear(cx: &KernelCtx<'_>, at: &ResizeAttrs) -> KResult {
    if at.align_corners && at.half_pixel_centers {
        return Err(KernelError::new("align_corners and half_pixel_centers cannot both be set"));
    }
    let x = input_f32(cx, 0, "input")?;
    let [n, ih, iw, c] = dims4(&cx.input(0)?.shape, "input")?;
    let [on, oh, ow, oc] = dims4(output_shape(cx)?, "result")?;
    if on != n || oc != c {
        return Err(KernelError::new(format!(
            "result [{on}, {oh}, {ow}, {oc}] does not fit input [{n}, {ih}, {iw}, {c}]"
        )));
    }
    if let Some(size) = cx.opt_input(1).and_then(|t| t.to_i64_vec()) {
        if size != [oh as i64, ow as i64] {
            return Err(KernelError::new(format!("size operand {size:?} differs from the result extent [{oh}, {ow}]")));
        }
    }
    let mut out = vec![0.0f32; n * oh * ow * c];
    if ih == 0 || iw == 0 {
        return single_output(cx, out);
    }
    let hs = scale(ih, oh, at.align_corners);
    let ws = scale(iw, ow, at.align_corners);
    let xs: Vec<(f32, usize, usize)> = (0..ow).map(|xo| interpolation(xo, ws, at.half_pixel_centers, iw)).collect();
    for_row_blocks(&mut out, ow * c, ow * c * 8, |r0, block| {
        for (ri, orow) in block.chunks_exact_mut(ow * c).enumerate() {
            let r = r0 + ri;
            let (b, y) = (r / oh, r % oh);
            let (input_y, y0, y1) = interpolation(y, hs, at.half_pixel_centers, ih);
            let dy = input_y - y0 as f32;
            let row0 = (b * ih + y0) * iw;
            let row1 = (b * ih + y1) * iw;
            for (&(input_x, x0, x1), o) in xs.iter().zip(orow.chunks_exact_mut(c)) {
                let dx = input_x - x0 as f32;
                let p00 = &x[(row0 + x0) * c..(row0 + x0 + 1) * c];
                let p10 = &x[(row1 + x0) * c..(row1 + x0 + 1) * c];
                let p01 = &x[(row0 + x1) * c..(row0 + x1 + 1) * c];
                let p11 = &x[(row1 + x1) * c..(row1 + x1 + 1) * c];
                for (ch, o) in o.iter_mut().enumerate() {
                    *o = p00[ch] * (1.0 - dy) * (1.0 - dx)
                        + p10[ch] * dy * (1.0 - dx)
                        + p01[ch] * (1.0 - dy) * dx
                        + p11[ch] * dy * dx;
                }
            }
        }
    });
    single_output(cx, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_coordinates_follow_tflite() {
        // 4 -> 8, half pixel centers: (x + 0.5) * 0.5 - 0.5.
        assert_eq!(interpolation(0, 0.5, true, 4), (-0.25, 0, 0));
        assert_eq!(interpolation(7, 0.5, true, 4), (3.25, 3, 3));
        assert_eq!(interpolation(3, 0.5, true, 4), (1.25, 1, 2));
        // Legacy mode: x * scale.
        assert_eq!(interpolation(3, 0.5, false, 4), (1.5, 1, 2));
        assert_eq!(scale(4, 8, true), 3.0 / 7.0);
        assert_eq!(scale(4, 1, true), 4.0);
    }
}
