//! Densifying sparse constants (TFLite's sparsity format).
//!
//! The format (tensorflow/lite/schema `SparsityParameters`) describes a tensor of rank `r`
//! split into `r + k` *traversal* dimensions: the `r` original dimensions (each divided by
//! its block size if blocked) and `k` block dimensions, block `j` splitting original
//! dimension `block_map[j]`. `traversal_order` lists the order in which they are walked,
//! outermost first; `dim_metadata[l]` describes level `l` of that walk: DENSE levels run
//! over `0..dense_size`, SPARSE_CSR levels over the indices
//! `array_indices[array_segments[p]..array_segments[p + 1]]` where `p` numbers the
//! position in the level above (for a dense parent `p = parent · size + i`, for a sparse
//! parent the position in its index array). Every complete path consumes the next stored
//! value.
//!
//! This follows tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc
//! (`FormatConverter::SparseToDense` / `Populate`), including its quirk that the size of
//! block `j` is read from `dim_metadata[traversal_order[r + j]]`. Unlike that code it
//! validates everything a hostile file could get wrong (orders, block maps, segment
//! arrays, indices, value count) and bounds the work by the dense size, returning an
//! error instead of reading or writing out of bounds.

use npuc_ir::{Constant, DType, DimFormat, IndexVector, Sparsity, TensorType};

use crate::kernels::movement::map_data;
use crate::tensor::{Data, Tensor};

/// Expands a constant stored in TFLite's sparse format into a dense tensor of `ty`.
pub fn densify(ty: &TensorType, data: &Constant, sparsity: &Sparsity) -> Result<Tensor, String> {
    let bytes = data.bytes().ok_or("its data was elided in text form")?;
    let dense = usize::try_from(ty.num_elements().ok_or("its element count overflows")?)
        .map_err(|_| "its element count overflows".to_string())?;
    let nvalues = match ty.dtype {
        DType::I4 => bytes.len() * 2,
        d => {
            let w = (d.bits() / 8) as usize;
            if bytes.len() % w != 0 {
                return Err(format!("{} bytes are not a whole number of {d} values", bytes.len()));
            }
            bytes.len() / w
        }
    };
    let plan = plan(&ty.shape, sparsity, nvalues)?;
    let values = Data::from_le_bytes(ty.dtype, bytes, nvalues)
        .ok_or_else(|| format!("{} bytes do not decode as {nvalues} {} values", bytes.len(), ty.dtype))?;
    // `plan[k]` is where stored value k goes; every other element is zero.
    let out = map_data!(&values, v => {
        let mut out = vec![Default::default(); dense];
        for (&dst, &x) in plan.iter().zip(v.iter()) {
            out[dst] = x;
        }
        out
    });
    Ok(Tensor { shape: ty.shape.clone(), data: out })
}

/// One level of the traversal.
enum Level<'a> {
    Dense(usize),
    Sparse { segments: &'a IndexVector, indices: &'a IndexVector },
}

/// The validated walk: per level, its extent and how it is stored.
struct Walker<'a> {
    levels: Vec<Level<'a>>,
    /// Extent of each level's traversal dimension (blocked extent or block size).
    extents: Vec<usize>,
    traversal: Vec<usize>,
    block_map: Vec<usize>,
    block_size: Vec<usize>,
    dense_shape: &'a [usize],
    dense_strides: Vec<usize>,
    /// Current index per level.
    idx: Vec<usize>,
    /// Destination (flat dense index) of each stored value, in storage order.
    plan: Vec<usize>,
    nvalues: usize,
}

/// Computes, for every stored value in order, its flat index in the dense tensor.
fn plan(shape: &[usize], sp: &Sparsity, nvalues: usize) -> Result<Vec<usize>, String> {
    let rank = shape.len();
    let total = sp.traversal_order.len();
    let nblocks = sp.block_map.len();
    if total != rank + nblocks {
        return Err(format!("traversal_order has {total} entries, expected rank {rank} + {nblocks} block dimensions"));
    }
    if sp.dim_metadata.len() != total {
        return Err(format!("dim_metadata has {} entries, expected {total}", sp.dim_metadata.len()));
    }
    // The traversal order must be a permutation whose first `rank` entries are the
    // original dimensions (the converter places block dimensions last).
    let mut seen = vec![false; total];
    let mut traversal = Vec::with_capacity(total);
    for (l, &t) in sp.traversal_order.iter().enumerate() {
        let ok = usize::try_from(t).ok().filter(|&t| t < total && !seen[t] && ((l < rank) == (t < rank)));
        let Some(t) = ok else {
            return Err(format!(
                "traversal_order {:?} is not a permutation with the {rank} original dimensions first",
                sp.traversal_order
            ));
        };
        seen[t] = true;
        traversal.push(t);
    }
    // Block dimensions: strictly increasing original dimensions (TFLite registers block j
    // only when it meets dimension block_map[j] in order).
    let mut block_map = Vec::with_capacity(nblocks);
    for &b in &sp.block_map {
        let ok = usize::try_from(b).ok().filter(|&b| b < rank && block_map.last().is_none_or(|&p| p < b));
        block_map.push(
            ok.ok_or_else(|| format!("block_map {:?} must name increasing dimensions below {rank}", sp.block_map))?,
        );
    }
    let mut block_size = Vec::with_capacity(nblocks);
    let mut blocked = shape.to_vec();
    for (j, &d) in block_map.iter().enumerate() {
        let m = &sp.dim_metadata[traversal[rank + j]];
        let bs = usize::try_from(m.dense_size).ok().filter(|&b| b > 0).ok_or_else(|| {
            format!(
                "block {j} has size {} (dense_size of level {}), expected a positive size",
                m.dense_size,
                traversal[rank + j]
            )
        })?;
        if shape[d] % bs != 0 {
            return Err(format!("dimension {d} of size {} is not a multiple of its block size {bs}", shape[d]));
        }
        blocked[d] = shape[d] / bs;
        block_size.push(bs);
    }
    let extents: Vec<usize> =
        traversal.iter().map(|&t| if t < rank { blocked[t] } else { block_size[t - rank] }).collect();
    let mut levels = Vec::with_capacity(total);
    for (l, m) in sp.dim_metadata.iter().enumerate() {
        levels.push(match m.format {
            DimFormat::Dense => {
                let n = usize::try_from(m.dense_size).ok().filter(|&n| n <= extents[l]).ok_or_else(|| {
                    format!("level {l} has dense_size {}, beyond its extent {}", m.dense_size, extents[l])
                })?;
                Level::Dense(n)
            }
            DimFormat::SparseCsr => {
                let (Some(segments), Some(indices)) = (&m.array_segments, &m.array_indices) else {
                    return Err(format!("sparse level {l} lacks array_segments or array_indices"));
                };
                check_segments(l, segments, indices.len())?;
                Level::Sparse { segments, indices }
            }
        });
    }
    let mut dense_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        dense_strides[i] = dense_strides[i + 1] * shape[i + 1];
    }
    let mut w = Walker {
        levels,
        extents,
        traversal,
        block_map,
        block_size,
        dense_shape: shape,
        dense_strides,
        idx: vec![0; total],
        plan: Vec::with_capacity(nvalues.min(shape.iter().product())),
        nvalues,
    };
    w.visit(0, 0)?;
    Ok(w.plan)
}

/// Segments must start at 0 or above, never decrease and end within the index array, so
/// sibling ranges are disjoint and every index is visited at most once per parent path.
fn check_segments(level: usize, seg: &IndexVector, n_indices: usize) -> Result<(), String> {
    let mut prev = 0i64;
    for i in 0..seg.len() {
        let s = seg.get(i).unwrap_or(-1);
        if s < prev || s > n_indices as i64 {
            return Err(format!(
                "array_segments of sparse level {level} are not non-decreasing within 0..={n_indices} (entry {i} is {s})"
            ));
        }
        prev = s;
    }
    Ok(())
}

impl Walker<'_> {
    fn visit(&mut self, level: usize, prev: usize) -> Result<(), String> {
        if level == self.levels.len() {
            return self.leaf();
        }
        match self.levels[level] {
            Level::Dense(n) => {
                for i in 0..n {
                    self.idx[level] = i;
                    self.visit(level + 1, prev * n + i)?;
                }
            }
            Level::Sparse { segments, indices } => {
                // TFLite skips a parent position without a segment pair.
                if prev + 1 < segments.len() {
                    let lo = segments.get(prev).unwrap_or(0) as usize;
                    let hi = segments.get(prev + 1).unwrap_or(0) as usize;
                    for i in lo..hi {
                        let v = indices.get(i).unwrap_or(-1);
                        if v < 0 || v as u64 >= self.extents[level] as u64 {
                            return Err(format!(
                                "index {v} of sparse level {level} is out of range for extent {}",
                                self.extents[level]
                            ));
                        }
                        self.idx[level] = v as usize;
                        self.visit(level + 1, i)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn leaf(&mut self) -> Result<(), String> {
        if self.plan.len() >= self.nvalues {
            return Err(format!("the index arrays address more than the {} stored values", self.nvalues));
        }
        let rank = self.dense_shape.len();
        // Original dimensions first (levels 0..rank), then fold each block's inner index in.
        let mut small = [0usize; 8];
        let mut large;
        let orig: &mut [usize] = if rank <= small.len() {
            &mut small[..rank]
        } else {
            large = vec![0usize; rank];
            &mut large
        };
        for l in 0..rank {
            orig[self.traversal[l]] = self.idx[l];
        }
        for l in rank..self.levels.len() {
            let j = self.traversal[l] - rank;
            let d = self.block_map[j];
            orig[d] = orig[d] * self.block_size[j] + self.idx[l];
        }
        let flat: usize = orig.iter().zip(&self.dense_strides).map(|(&i, &s)| i * s).sum();
        self.plan.push(flat);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::DimMetadata;

    fn dense(n: i32) -> DimMetadata {
        DimMetadata { format: DimFormat::Dense, dense_size: n, array_segments: None, array_indices: None }
    }

    fn csr(seg: Vec<i32>, idx: Vec<i32>) -> DimMetadata {
        DimMetadata {
            format: DimFormat::SparseCsr,
            dense_size: 0,
            array_segments: Some(IndexVector::I32(seg)),
            array_indices: Some(IndexVector::I32(idx)),
        }
    }

    fn f32_const(v: &[f32]) -> Constant {
        Constant::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }

    fn run(shape: &[usize], sp: &Sparsity, vals: &[f32]) -> Result<Vec<f32>, String> {
        let t = densify(&TensorType::new(DType::F32, shape.to_vec()), &f32_const(vals), sp)?;
        match t.data {
            Data::F32(v) => Ok(v),
            _ => unreachable!(),
        }
    }

    /// [[1, 0, 0, 2], [0, 0, 0, 0], [0, 3, 4, 0]] as 2-D CSR.
    fn csr_2d() -> Sparsity {
        Sparsity {
            traversal_order: vec![0, 1],
            block_map: vec![],
            dim_metadata: vec![dense(3), csr(vec![0, 2, 2, 4], vec![0, 3, 1, 2])],
        }
    }

    #[test]
    fn csr_matrix() {
        let got = run(&[3, 4], &csr_2d(), &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(got, vec![1., 0., 0., 2., 0., 0., 0., 0., 0., 3., 4., 0.]);
    }

    #[test]
    fn column_major_traversal() {
        // Same matrix stored by columns: traversal [1, 0], column c has rows listed.
        let sp = Sparsity {
            traversal_order: vec![1, 0],
            block_map: vec![],
            dim_metadata: vec![dense(4), csr(vec![0, 1, 2, 3, 4], vec![0, 2, 2, 0])],
        };
        let got = run(&[3, 4], &sp, &[1.0, 3.0, 4.0, 2.0]).unwrap();
        assert_eq!(got, vec![1., 0., 0., 2., 0., 0., 0., 0., 0., 3., 4., 0.]);
    }

    #[test]
    fn block_sparse_4d() {
        // Shape [2, 1, 1, 4] (O, H, W, I) with 1x2 blocks along I (block_map [3]): the
        // traversal is O, H, W, I/2 (sparse), then the dense block of 2.
        // Dense: o=0: [1, 2, 0, 0]; o=1: [0, 0, 5, 6].
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2, 3, 4],
            block_map: vec![3],
            dim_metadata: vec![dense(2), dense(1), dense(1), csr(vec![0, 1, 2], vec![0, 1]), dense(2)],
        };
        let got = run(&[2, 1, 1, 4], &sp, &[1.0, 2.0, 5.0, 6.0]).unwrap();
        assert_eq!(got, vec![1., 2., 0., 0., 0., 0., 5., 6.]);
    }

    #[test]
    fn two_blocked_dimensions() {
        // 4x4 with 2x2 blocks (block_map [0, 1]); only block (1, 0) is non-zero:
        // rows 2-3, cols 0-1 = [[1, 2], [3, 4]].
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2, 3],
            block_map: vec![0, 1],
            dim_metadata: vec![dense(2), csr(vec![0, 0, 1], vec![0]), dense(2), dense(2)],
        };
        let got = run(&[4, 4], &sp, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(got, vec![0., 0., 0., 0., 0., 0., 0., 0., 1., 2., 0., 0., 3., 4., 0., 0.]);
    }

    #[test]
    fn index_widths_and_other_dtypes() {
        let sp = Sparsity {
            traversal_order: vec![0],
            block_map: vec![],
            dim_metadata: vec![DimMetadata {
                format: DimFormat::SparseCsr,
                dense_size: 0,
                array_segments: Some(IndexVector::U16(vec![0, 2])),
                array_indices: Some(IndexVector::U8(vec![1, 3])),
            }],
        };
        let t = densify(&TensorType::new(DType::I8, vec![4]), &Constant::from(vec![0xff, 7]), &sp).unwrap();
        assert_eq!(t.data, Data::I8(vec![0, -1, 0, 7]));
        let t = densify(&TensorType::new(DType::F16, vec![4]), &Constant::from(vec![0, 0x3c, 0, 0x40]), &sp).unwrap();
        assert_eq!(t.data.to_f64_vec(), vec![0.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn hostile_metadata_is_rejected_without_panicking() {
        let vals = [1.0, 2.0, 3.0, 4.0];
        let mut sp = csr_2d();
        sp.dim_metadata[1] = csr(vec![0, 2, 2, 4], vec![0, 4, 1, 2]);
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("out of range"));
        sp.dim_metadata[1] = csr(vec![0, 2, 1, 4], vec![0, 3, 1, 2]);
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("non-decreasing"));
        sp.dim_metadata[1] = csr(vec![0, 2, 2, 9], vec![0, 3, 1, 2]);
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("non-decreasing"));
        sp.dim_metadata[1] = csr(vec![0, 2, 2, 4], vec![0, -3, 1, 2]);
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("out of range"));
        // Too few values.
        assert!(run(&[3, 4], &csr_2d(), &vals[..3]).unwrap_err().contains("stored values"));
        // Dense level larger than the dimension.
        let mut sp = csr_2d();
        sp.dim_metadata[0] = dense(i32::MAX);
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("beyond its extent"));
        // Bad orders and maps.
        let mut sp = csr_2d();
        sp.traversal_order = vec![0, 0];
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("permutation"));
        sp.traversal_order = vec![0];
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("traversal_order"));
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2],
            block_map: vec![5],
            dim_metadata: vec![dense(3), dense(4), dense(1)],
        };
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("block_map"));
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2],
            block_map: vec![1],
            dim_metadata: vec![dense(3), dense(2), dense(0)],
        };
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("positive size"));
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2],
            block_map: vec![1],
            dim_metadata: vec![dense(3), dense(1), dense(3)],
        };
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("multiple of its block size"));
        // Missing arrays, odd byte counts, elided data.
        let mut sp = csr_2d();
        sp.dim_metadata[1].array_indices = None;
        assert!(run(&[3, 4], &sp, &vals).unwrap_err().contains("lacks"));
        let e = densify(&TensorType::new(DType::F32, vec![3, 4]), &Constant::from(vec![0u8; 5]), &csr_2d());
        assert!(e.unwrap_err().contains("whole number"));
        let e = densify(&TensorType::new(DType::F32, vec![3, 4]), &Constant::elided("00", 16), &csr_2d());
        assert!(e.unwrap_err().contains("elided"));
    }

    #[test]
    fn overlapping_parents_cannot_blow_up() {
        // Every parent position of a sparse level shares one huge segment only if the
        // segments repeat, which the monotonicity check forbids; and a sparse level whose
        // segments array is shorter than its parents simply skips them, like TFLite.
        let sp = Sparsity {
            traversal_order: vec![0, 1],
            block_map: vec![],
            dim_metadata: vec![dense(3), csr(vec![0, 1], vec![2])],
        };
        assert_eq!(run(&[3, 4], &sp, &[9.0]).unwrap(), vec![0., 0., 9., 0., 0., 0., 0., 0., 0., 0., 0., 0.]);
    }
}
