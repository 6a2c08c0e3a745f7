//! The e-graph language of linear regions and its analysis.
//!
//! Terms are of four sorts. *Tensors*: region inputs (`v3`), `(conv K x)` (a kernel applied
//! to a tensor), `(add x y)` (same shapes, no broadcasting), `(mulc x C)` / `(addc x C)`
//! (per-channel constants) and `(pad P x)` (zero padding of H and W). *Kernels*: weights
//! read from the graph (`k0`) and the algebra on them — `(compose K2 K1)` (K1 first),
//! `(sum K1 K2)`, `(ident K)` (identity on K's output channels), `(scale K C)`,
//! `(shift K C)`, `(scalein K C)`, `(shiftin K C)`, `(padk K P)`. *Constants* `c0` and
//! *paddings* `p0` are leaves.
//!
//! The analysis evaluates kernel terms eagerly (weights are small next to feature maps),
//! so a rule's condition can test what a rewrite would produce and extraction never meets
//! an invalid kernel; tensor classes carry their shape.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use egg::{define_language, DidMerge, EGraph, Id};

use crate::kernel::{self, Kernel};

/// A leaf of the language: an index into one of the region's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leaf {
    /// Region input `values[i]` (a tensor produced outside the region).
    Value(u32),
    /// Kernel `kernels[i]` read from the graph.
    Kernel(u32),
    /// Per-channel constant `consts[i]`.
    Const(u32),
    /// Zero padding `pads[i]`.
    Pads(u32),
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Value(i) => write!(f, "v{i}"),
            Leaf::Kernel(i) => write!(f, "k{i}"),
            Leaf::Const(i) => write!(f, "c{i}"),
            Leaf::Pads(i) => write!(f, "p{i}"),
        }
    }
}

impl FromStr for Leaf {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tag, rest) = s.split_at(s.find(|c: char| c.is_ascii_digit()).ok_or_else(|| format!("bad leaf '{s}'"))?);
        let i: u32 = rest.parse().map_err(|_| format!("bad leaf '{s}'"))?;
        match tag {
            "v" => Ok(Leaf::Value(i)),
            "k" => Ok(Leaf::Kernel(i)),
            "c" => Ok(Leaf::Const(i)),
            "p" => Ok(Leaf::Pads(i)),
            _ => Err(format!("bad leaf '{s}'")),
        }
    }
}

define_language! {
    /// Linear-region terms (see the module documentation for the sorts).
    pub enum Lin {
        "conv" = Conv([Id; 2]),
        "add" = Add([Id; 2]),
        "mulc" = MulC([Id; 2]),
        "addc" = AddC([Id; 2]),
        "pad" = Pad([Id; 2]),
        "compose" = Compose([Id; 2]),
        "sum" = Sum([Id; 2]),
        "ident" = Ident(Id),
        "scale" = Scale([Id; 2]),
        "shift" = Shift([Id; 2]),
        "scalein" = ScaleIn([Id; 2]),
        "shiftin" = ShiftIn([Id; 2]),
        "padk" = PadK([Id; 2]),
        Leaf(Leaf),
    }
}

/// What the analysis knows about an e-class.
#[derive(Clone, Debug)]
pub enum Data {
    /// A tensor and its shape (`None`: not a well-formed tensor term).
    Tensor(Option<Vec<usize>>),
    /// A kernel (`None`: the algebra does not give one exact kernel).
    Kernel(Option<Arc<Kernel>>),
    /// A per-channel constant.
    Const(Arc<Vec<f64>>),
    /// A zero padding `[top, bottom, left, right]`.
    Pads([usize; 4]),
}

impl Data {
    /// The tensor shape, if this is a well-formed tensor.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Data::Tensor(Some(s)) => Some(s),
            _ => None,
        }
    }

    /// The kernel, if this is a valid kernel.
    pub fn kernel(&self) -> Option<&Arc<Kernel>> {
        match self {
            Data::Kernel(Some(k)) => Some(k),
            _ => None,
        }
    }

    /// The constant, if this is one.
    pub fn constant(&self) -> Option<&Arc<Vec<f64>>> {
        match self {
            Data::Const(c) => Some(c),
            _ => None,
        }
    }

    /// The padding, if this is one.
    pub fn pads(&self) -> Option<[usize; 4]> {
        match self {
            Data::Pads(p) => Some(*p),
            _ => None,
        }
    }
}

/// The leaves of one region: what `v*`, `k*`, `c*` and `p*` refer to.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// Shapes of the region inputs.
    pub values: Vec<Vec<usize>>,
    /// Kernels read from the graph.
    pub kernels: Vec<Arc<Kernel>>,
    /// Per-channel constants read from the graph.
    pub consts: Vec<Arc<Vec<f64>>>,
    /// Paddings read from the graph.
    pub pads: Vec<[usize; 4]>,
}

/// The e-class analysis: evaluates kernels and shapes from the region's tables.
#[derive(Clone, Debug, Default)]
pub struct LinAnalysis {
    /// The region's leaves.
    pub tables: Tables,
}

/// The e-graph of one region.
pub type LinGraph = EGraph<Lin, LinAnalysis>;

fn kern(k: Option<Kernel>) -> Data {
    Data::Kernel(k.filter(Kernel::is_well_formed).map(Arc::new))
}

/// What a node denotes, given what its children denote: the one definition of the
/// language's meaning, shared by the e-graph analysis and by materialization of an
/// extracted term.
pub fn evaluate<'a>(node: &Lin, tables: &Tables, child: impl Fn(Id) -> &'a Data) -> Data {
    let kernel = |id: Id| child(id).kernel().cloned();
    let constant = |id: Id| child(id).constant().cloned();
    let shape = |id: Id| child(id).shape().map(<[usize]>::to_vec);
    match node {
        Lin::Leaf(Leaf::Value(i)) => Data::Tensor(tables.values.get(*i as usize).cloned()),
        Lin::Leaf(Leaf::Kernel(i)) => Data::Kernel(tables.kernels.get(*i as usize).cloned()),
        Lin::Leaf(Leaf::Const(i)) => Data::Const(tables.consts.get(*i as usize).cloned().unwrap_or_default()),
        Lin::Leaf(Leaf::Pads(i)) => Data::Pads(tables.pads.get(*i as usize).copied().unwrap_or_default()),
        Lin::Conv([k, x]) => Data::Tensor(kernel(*k).zip(shape(*x)).and_then(|(k, s)| k.output_shape(&s))),
        Lin::Add([a, b]) => Data::Tensor(shape(*a).zip(shape(*b)).and_then(|(a, b)| (a == b).then_some(a))),
        Lin::MulC([x, c]) | Lin::AddC([x, c]) => Data::Tensor(
            shape(*x).zip(constant(*c)).and_then(|(s, c)| kernel::broadcasts(c.len(), *s.last()?).then_some(s)),
        ),
        Lin::Pad([p, x]) => Data::Tensor(
            child(*p)
                .pads()
                .zip(shape(*x))
                .and_then(|(p, s)| (s.len() == 4).then(|| vec![s[0], s[1] + p[0] + p[1], s[2] + p[2] + p[3], s[3]])),
        ),
        Lin::Compose([k2, k1]) => kern(kernel(*k2).zip(kernel(*k1)).and_then(|(b, a)| kernel::compose(&b, &a))),
        Lin::Sum([a, b]) => kern(kernel(*a).zip(kernel(*b)).and_then(|(a, b)| kernel::sum(&a, &b))),
        Lin::Ident(k) => kern(
            kernel(*k)
                .and_then(|k| (k.cin == k.cout).then(|| Kernel::identity(k.cout, k.kind == kernel::KernelKind::Dense))),
        ),
        Lin::Scale([k, c]) => kern(kernel(*k).zip(constant(*c)).and_then(|(k, c)| kernel::scale_out(&k, &c))),
        Lin::Shift([k, c]) => kern(kernel(*k).zip(constant(*c)).and_then(|(k, c)| kernel::shift_out(&k, &c))),
        Lin::ScaleIn([k, c]) => kern(kernel(*k).zip(constant(*c)).and_then(|(k, c)| kernel::scale_in(&k, &c))),
        Lin::ShiftIn([k, c]) => kern(kernel(*k).zip(constant(*c)).and_then(|(k, c)| kernel::shift_in(&k, &c))),
        Lin::PadK([k, p]) => kern(kernel(*k).zip(child(*p).pads()).and_then(|(k, p)| kernel::pad(&k, p))),
    }
}

impl egg::Analysis<Lin> for LinAnalysis {
    type Data = Data;

    fn make(g: &mut LinGraph, node: &Lin, _id: Id) -> Data {
        evaluate(node, &g.analysis.tables, |id| &g[id].data)
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        // Rules only union equal things; a merge fills in what one side could not compute.
        match (&*a, &b) {
            (Data::Tensor(None), Data::Tensor(Some(_))) | (Data::Kernel(None), Data::Kernel(Some(_))) => {
                *a = b;
                DidMerge(true, false)
            }
            _ => DidMerge(false, true),
        }
    }
}
