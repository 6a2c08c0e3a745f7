//! Magnitude pruning of weight constants: unstructured (per layer or one global
//! threshold) and N:M along the innermost (input-channel) dimension.

use std::cmp::Ordering;

/// Orders element indices by magnitude, ties by index, so the choice is deterministic.
fn by_magnitude(mags: &[f64]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    move |&a, &b| mags[a].total_cmp(&mags[b]).then(a.cmp(&b))
}

/// Number of weights `sparsity` asks to zero among `count`: `round(sparsity × count)`.
pub fn target_zeros(sparsity: f64, count: usize) -> usize {
    ((sparsity * count as f64).round() as usize).min(count)
}

/// The indices of the `k` smallest magnitudes (ties broken by lower index first), sorted.
/// Weights already zero have the smallest magnitude, so they count toward `k`.
pub fn smallest(mags: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..mags.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by_magnitude(mags));
    }
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Non-zeros an N:M group of `len` weights keeps: `n` for a full group, `⌈n·len/m⌉` for a
/// trailing partial one (so a short tail is pruned about as much as a full group).
pub fn group_keep(n: u32, m: u32, len: usize) -> usize {
    (n as usize * len).div_ceil(m as usize)
}

/// The indices to zero for N:M pruning of a tensor whose innermost dimension has `inner`
/// elements: in each run of `m` consecutive elements of a row (the last may be shorter,
/// see [`group_keep`]) all but the largest are chosen, ties keep the lower index.
pub fn n_of_m(mags: &[f64], inner: usize, n: u32, m: u32) -> Vec<usize> {
    let mut out = Vec::new();
    if inner == 0 {
        return out;
    }
    let m_len = m as usize;
    for row in 0..mags.len() / inner {
        let base = row * inner;
        let mut start = 0;
        while start < inner {
            let len = m_len.min(inner - start);
            let keep = group_keep(n, m, len);
            let mut group: Vec<usize> = (base + start..base + start + len).collect();
            // Largest first; among equals the lower index is kept.
            group.sort_unstable_by(|&a, &b| mags[b].total_cmp(&mags[a]).then(a.cmp(&b)));
            out.extend_from_slice(&group[keep.min(len)..]);
            start += len;
        }
    }
    out.sort_unstable();
    out
}

/// Global magnitude pruning: `layers[i]` are the magnitudes of layer i; the
/// `round(sparsity × total)` smallest across all layers (ties: earlier layer, then lower
/// index) are chosen. Returns each layer's indices to zero.
pub fn global(layers: &[Vec<f64>], sparsity: f64) -> Vec<Vec<usize>> {
    let total: usize = layers.iter().map(Vec::len).sum();
    let k = target_zeros(sparsity, total);
    let mut all: Vec<(usize, usize)> =
        layers.iter().enumerate().flat_map(|(l, m)| (0..m.len()).map(move |i| (l, i))).collect();
    let cmp = |a: &(usize, usize), b: &(usize, usize)| layers[a.0][a.1].total_cmp(&layers[b.0][b.1]).then(a.cmp(b));
    let mut out = vec![Vec::new(); layers.len()];
    if k == 0 {
        return out;
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, cmp);
    }
    for &(l, i) in &all[..k] {
        out[l].push(i);
    }
    for v in &mut out {
        v.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_breaks_ties_by_index() {
        let m = [1.0, 0.5, 0.5, 0.0, 2.0, 0.5];
        assert_eq!(smallest(&m, 0), Vec::<usize>::new());
        assert_eq!(smallest(&m, 1), vec![3]);
        assert_eq!(smallest(&m, 3), vec![1, 2, 3]);
        assert_eq!(smallest(&m, 6), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(target_zeros(0.5, 5), 3);
        assert_eq!(target_zeros(0.25, 6), 2);
    }

    #[test]
    fn n_of_m_keeps_the_largest_per_group_with_partial_tail() {
        // Two rows of 6: groups [0..4) and a tail of 2 (keeps ceil(2·2/4) = 1).
        let m = [4.0, 1.0, 3.0, 2.0, 1.0, 5.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0];
        // Row 2: the zeros tie, the lower index (6) is kept.
        assert_eq!(n_of_m(&m, 6, 2, 4), vec![1, 3, 4, 7, 8, 11]);
        assert_eq!(group_keep(2, 4, 4), 2);
        assert_eq!(group_keep(2, 4, 1), 1);
        assert_eq!(group_keep(1, 4, 3), 1);
    }

    #[test]
    fn global_threshold_spans_layers() {
        let a = vec![0.1, 0.2, 5.0, 6.0];
        let b = vec![0.3, 7.0];
        let z = global(&[a, b], 0.5);
        assert_eq!(z, vec![vec![0, 1], vec![0]]);
    }
}
