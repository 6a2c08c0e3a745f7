//! Geometry of windowed ops (convolutions, depthwise convolutions, pooling) shared by the
//! float and quantized kernels: TFLite's output sizes and paddings
//! (tensorflow/lite/kernels/padding.h).

use npuc_ir::Padding;

/// TFLite's output extent of a windowed op (`ComputeOutSize`). `stride` must be positive.
pub(crate) fn out_size(padding: Padding, in_size: usize, filter: usize, stride: usize, dilation: usize) -> usize {
    let effective = (filter.max(1) - 1) * dilation + 1;
    match padding {
        Padding::Same => in_size.div_ceil(stride),
        Padding::Valid => (in_size + stride).saturating_sub(effective) / stride,
    }
}

/// TFLite's padding before the first element along one dimension
/// (`ComputePaddingWithOffset`): half the total padding, rounded down, so an odd extra
/// element goes to the far side.
pub(crate) fn padding_before(stride: usize, dilation: usize, in_size: usize, filter: usize, out_size: usize) -> usize {
    let effective = (filter as i64 - 1) * dilation as i64 + 1;
    let total = (out_size as i64 - 1) * stride as i64 + effective - in_size as i64;
    (total.max(0) / 2) as usize
}

/// Taps `k` of a window starting at `origin` (may be negative) with dilation `d` that fall
/// inside `0..size`.
pub(crate) fn valid_taps(origin: isize, d: usize, taps: usize, size: usize) -> std::ops::Range<usize> {
    let d = d as isize;
    let lo = if origin < 0 { ((-origin) + d - 1) / d } else { 0 };
    let last = size as isize - 1 - origin;
    let hi = if last < 0 { 0 } else { (last / d + 1).min(taps as isize) };
    let lo = lo.min(taps as isize);
    lo as usize..(hi.max(lo)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_matches_tflite() {
        // 5 wide, 3 tap, stride 2, SAME: out 3, total padding 2 -> 1 before.
        assert_eq!(out_size(Padding::Same, 5, 3, 2, 1), 3);
        assert_eq!(padding_before(2, 1, 5, 3, 3), 1);
        // 4 wide, 3 tap, stride 2, SAME: out 2, total 1 -> 0 before (extra after).
        assert_eq!(padding_before(2, 1, 4, 3, 2), 0);
        assert_eq!(out_size(Padding::Valid, 5, 3, 2, 1), 2);
        assert_eq!(padding_before(2, 1, 5, 3, 2), 0);
        // Dilation widens the window.
        assert_eq!(out_size(Padding::Valid, 7, 3, 1, 2), 3);
    }

    #[test]
    fn valid_taps_clip_the_window() {
        assert_eq!(valid_taps(-1, 1, 3, 5), 1..3);
        assert_eq!(valid_taps(3, 1, 3, 5), 0..2);
        assert_eq!(valid_taps(-3, 2, 3, 5), 2..3);
        assert_eq!(valid_taps(0, 2, 3, 5), 0..3);
        assert_eq!(valid_taps(1, 2, 3, 5), 0..2);
        assert_eq!(valid_taps(-10, 1, 3, 5), 3..3);
        assert_eq!(valid_taps(7, 1, 3, 5), 0..0);
    }
}
