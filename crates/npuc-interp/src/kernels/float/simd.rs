//! Run-time CPU feature dispatch for the hot loops.
//!
//! The crate is compiled for the baseline x86-64 (SSE2), so auto-vectorized loops would use
//! 4 lanes. [`multiversion!`] compiles a function body twice (AVX2, baseline) and picks one
//! per call from the CPU's features (a cached check). The body is the same code, so both
//! versions compute the same values: LLVM does not contract `a * b + c` into fused
//! multiply-adds, and no body here asks for one. (AVX-512 would need Rust 1.89; the
//! workspace supports 1.85. The matrix product has its own AVX-512 tiles in assembly.)

/// Defines `fn name(args) -> ret { body }` in three compilations chosen at run time.
/// Arguments must be plain identifiers with types that need no generic parameters.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has the features `v3` was compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

/// Lanes of the accumulator arrays below (two AVX registers).
pub(super) const LANES: usize = 16;

/// `Σ a[i]·b[i]` over the common length, with [`LANES`] partial sums (a fixed order, so the
/// result does not depend on the CPU).
#[inline(always)]
pub(super) fn dot_inline(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    // Pairwise reduction of the lanes.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0] + tail
}

multiversion! {
    /// `out[j] = Σ_k x[k] · w[j·k_len + k]` for every row `j` of `w` (a matrix-vector product
    /// with `[rows, k_len]` weights, as FULLY_CONNECTED stores them).
    pub(super) fn gemv_rows(x: &[f32], w: &[f32], k_len: usize, out: &mut [f32]) {
        if k_len == 0 {
            out.fill(0.0);
            return;
        }
        for (o, row) in out.iter_mut().zip(w.chunks_exact(k_len)) {
            *o = dot_inline(x, row);
        }
    }
}

/// Scalar "vectors" of 4 lanes for targets without the x86 kernels; the same operation
/// order, so the same results.
pub(super) mod lanes4 {
    pub(in crate::kernels::float) type V = [f32; 4];
    #[inline(always)]
    pub(in crate::kernels::float) fn zero() -> V {
        [0.0; 4]
    }
    /// # Safety
    /// `p` must be valid for reading 4 values.
    #[inline(always)]
    pub(in crate::kernels::float) unsafe fn load(p: *const f32) -> V {
        std::ptr::read_unaligned(p as *const V)
    }
    /// # Safety
    /// `p` must be valid for writing 4 values.
    #[inline(always)]
    pub(in crate::kernels::float) unsafe fn store(p: *mut f32, v: V) {
        std::ptr::write_unaligned(p as *mut V, v)
    }
    #[inline(always)]
    pub(in crate::kernels::float) fn splat(x: f32) -> V {
        [x; 4]
    }
    #[inline(always)]
    pub(in crate::kernels::float) fn add(a: V, b: V) -> V {
        [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
    }
    #[inline(always)]
    pub(in crate::kernels::float) fn mul(a: V, b: V) -> V {
        [a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]]
    }
    /// `a > b ? a : b` per lane (the x86 `max` operand order).
    #[inline(always)]
    pub(in crate::kernels::float) fn max(a: V, b: V) -> V {
        std::array::from_fn(|i| if a[i] > b[i] { a[i] } else { b[i] })
    }
    /// `a < b ? a : b` per lane.
    #[inline(always)]
    pub(in crate::kernels::float) fn min(a: V, b: V) -> V {
        std::array::from_fn(|i| if a[i] < b[i] { a[i] } else { b[i] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        for n in [0usize, 1, 7, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot_inline(&a, &b)) - naive).abs() < 1e-4, "n={n}");
            let mut out = [0.0f32; 1];
            gemv_rows(&a, &b, n, &mut out);
            assert!((f64::from(out[0]) - naive).abs() < 1e-4 || n == 0);
        }
    }
}
