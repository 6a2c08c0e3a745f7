//! LLVM-free arithmetic the exporter needs: explicit padding of windowed ops and byte-level
//! permutation of constants. Kept apart from the MLIR code so it is tested in default builds.

use npuc_ir::Padding;

/// One spatial dimension of a windowed op (conv, pool) in TOSA's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Padding before the first element.
    pub before: usize,
    /// Padding after the last element.
    pub after: usize,
    /// How many input elements the op reads; less than the input size when trailing rows
    /// are never touched, which TOSA requires to be sliced off (its verifier wants
    /// `in - 1 + before + after - (effective_kernel - 1)` to be a multiple of the stride).
    pub used: usize,
}

/// TFLite's implicit SAME/VALID padding of one dimension made explicit, for a window of
/// `kernel` taps at `dilation` and `stride` producing `output` elements from `input`.
///
/// SAME puts the odd extra element at the end, as TFLite does. Returns `None` if the
/// sizes are inconsistent (the output needs more input than there is, or zero sizes).
pub fn window(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output: usize,
) -> Option<Window> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 || output == 0 {
        return None;
    }
    let effective = (kernel - 1).checked_mul(dilation)? + 1;
    let span = (output - 1).checked_mul(stride)?.checked_add(effective)?;
    let (before, after) = match padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let total = span.saturating_sub(input);
            (total / 2, total - total / 2)
        }
    };
    let used = span.checked_sub(before + after)?;
    if used > input || used == 0 {
        return None;
    }
    Some(Window { before, after, used })
}

/// Permutes a row-major tensor of `elem_bytes`-wide elements: result dimension `i` is
/// source dimension `perm[i]` (numpy's `transpose(perm)`). Returns `None` if `perm` is not
/// a permutation of the dimensions or `data` does not match `shape`.
pub fn transpose_bytes(data: &[u8], shape: &[usize], perm: &[usize], elem_bytes: usize) -> Option<Vec<u8>> {
    let rank = shape.len();
    if perm.len() != rank || elem_bytes == 0 {
        return None;
    }
    let mut seen = vec![false; rank];
    for &p in perm {
        if p >= rank || std::mem::replace(&mut seen[p], true) {
            return None;
        }
    }
    let count: usize = shape.iter().product();
    if data.len() != count.checked_mul(elem_bytes)? {
        return None;
    }
    // Source strides (in elements), then visit the destination in row-major order.
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; rank];
    for _ in 0..count {
        let src: usize = index.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&data[src * elem_bytes..(src + 1) * elem_bytes]);
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(out)
}

/// `shape` with leading 1s up to `rank` (numpy broadcasting aligns trailing dimensions;
/// TOSA wants operands of equal rank).
pub fn expand_rank(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut out = vec![1; rank.saturating_sub(shape.len())];
    out.extend_from_slice(shape);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_extra_at_the_end() {
        // 8 -> 4 with a 3-tap window at stride 2: 1 row of padding, at the end.
        assert_eq!(window(8, 3, 2, 1, Padding::Same, 4), Some(Window { before: 0, after: 1, used: 8 }));
        // 7 -> 7 with 3 taps: one each side.
        assert_eq!(window(7, 3, 1, 1, Padding::Same, 7), Some(Window { before: 1, after: 1, used: 7 }));
        // Dilation 2 makes a 3-tap window span 5.
        assert_eq!(window(7, 3, 1, 2, Padding::Same, 7), Some(Window { before: 2, after: 2, used: 7 }));
    }

    #[test]
    fn valid_padding_crops_rows_the_window_never_reads() {
        // 9 -> 4 with 2 taps at stride 2 reads rows 0..8 only.
        assert_eq!(window(9, 2, 2, 1, Padding::Valid, 4), Some(Window { before: 0, after: 0, used: 8 }));
        // SAME with a 1-tap window at stride 2 on 6 rows: 3 outputs read rows 0, 2, 4.
        assert_eq!(window(6, 1, 2, 1, Padding::Same, 3), Some(Window { before: 0, after: 0, used: 5 }));
    }

    #[test]
    fn inconsistent_sizes_are_rejected() {
        assert_eq!(window(4, 3, 1, 1, Padding::Valid, 4), None);
        assert_eq!(window(0, 1, 1, 1, Padding::Valid, 1), None);
    }

    #[test]
    fn transpose_matches_index_arithmetic() {
        // 2x3 of u16 -> 3x2.
        let src: Vec<u16> = (0..6).collect();
        let bytes: Vec<u8> = src.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = transpose_bytes(&bytes, &[2, 3], &[1, 0], 2).expect("valid permutation");
        let got: Vec<u16> = out.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(got, vec![0, 3, 1, 4, 2, 5]);
        // A 3-D permutation checked element by element.
        let shape = [2, 3, 4];
        let src: Vec<u8> = (0..24).collect();
        let out = transpose_bytes(&src, &shape, &[2, 0, 1], 1).expect("valid permutation");
        for k in 0..4 {
            for i in 0..2 {
                for j in 0..3 {
                    assert_eq!(out[(k * 2 + i) * 3 + j], src[(i * 3 + j) * 4 + k]);
                }
            }
        }
    }

    #[test]
    fn transpose_rejects_bad_permutations() {
        assert_eq!(transpose_bytes(&[0; 6], &[2, 3], &[0, 0], 1), None);
        assert_eq!(transpose_bytes(&[0; 5], &[2, 3], &[1, 0], 1), None);
    }

    #[test]
    fn expand_rank_prepends_ones() {
        assert_eq!(expand_rank(&[4], 3), vec![1, 1, 4]);
        assert_eq!(expand_rank(&[2, 4], 2), vec![2, 4]);
    }
}
