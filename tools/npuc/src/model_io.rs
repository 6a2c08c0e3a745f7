//! Loading models by format and writing outputs atomically.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use npuc_ir::Module;

use crate::error::DriverError;

/// File formats the driver reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TFLite flatbuffer.
    Tflite,
    /// npuc text IR.
    Nir,
    /// Graphviz DOT (write only).
    Dot,
    /// MLIR text of TOSA ops (write only; needs the `mlir` feature).
    Mlir,
}

impl Format {
    /// The format an extension names, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "tflite" => Some(Format::Tflite),
            "nir" => Some(Format::Nir),
            "dot" | "gv" => Some(Format::Dot),
            "mlir" => Some(Format::Mlir),
            _ => None,
        }
    }
}

/// Reads a model: TFLite when the file carries the `TFL3` identifier, text IR otherwise.
pub fn load(path: &Path) -> Result<Module, DriverError> {
    let file = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| DriverError::input(&file, format!("cannot read: {e}")))?;
    let looks_tflite = data.get(4..8) == Some(b"TFL3".as_slice());
    let by_ext = Format::from_extension(path);
    if looks_tflite || by_ext == Some(Format::Tflite) {
        return npuc_tflite::import(Bytes::from(data)).map_err(|e| DriverError::input(&file, e.to_string()));
    }
    let text = String::from_utf8(data).map_err(|e| {
        DriverError::input(
            &file,
            format!(
                "neither a TFLite model nor UTF-8 text IR (invalid UTF-8 at byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let module = npuc_ir::parse::parse_module(&text).map_err(|e| DriverError::input(&file, e.to_string()))?;
    npuc_ir::verify::verify_module(&module).map_err(|e| DriverError::input(&file, e.to_string()))?;
    Ok(module)
}

/// Renders a module in an output format.
pub fn render(m: &Module, format: Format, full_constants: bool) -> Result<Vec<u8>, DriverError> {
    match format {
        Format::Tflite => {
            npuc_tflite::export(m).map_err(|e| DriverError { file: None, message: e.to_string(), bad_input: true })
        }
        Format::Nir => {
            let opts = npuc_ir::print::PrintOptions { full_constants, ..Default::default() };
            Ok(npuc_ir::print::print_module(m, &opts).into_bytes())
        }
        Format::Dot => {
            let g = m.main().ok_or_else(|| DriverError::internal("module has no graph"))?;
            Ok(npuc_ir::dot::to_dot(g).into_bytes())
        }
        Format::Mlir => render_mlir(m),
    }
}

/// MLIR (TOSA) text of the main graph; the model is at fault for ops TOSA cannot express,
/// npuc for anything MLIR's verifier rejects.
#[cfg(feature = "mlir")]
fn render_mlir(m: &Module) -> Result<Vec<u8>, DriverError> {
    use npuc_mlir::MlirError;
    npuc_mlir::export_module(m).map(String::into_bytes).map_err(|e| {
        let bad_input = !matches!(e, MlirError::Verify(_) | MlirError::Internal(_));
        DriverError { file: None, message: e.to_string(), bad_input }
    })
}

/// Without the `mlir` feature there is no MLIR to write: say how to get it.
#[cfg(not(feature = "mlir"))]
fn render_mlir(_: &Module) -> Result<Vec<u8>, DriverError> {
    Err(DriverError {
        file: None,
        message: "this npuc was built without MLIR support; rebuild with --features mlir".into(),
        bad_input: true,
    })
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory renamed
/// into place), so a failure never leaves a partial output; `-` means stdout.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), DriverError> {
    let file = path.display().to_string();
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|e| DriverError::input("<stdout>", e.to_string()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".npuc-")
        .tempfile_in(dir)
        .map_err(|e| DriverError::input(&file, format!("cannot create output: {e}")))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| DriverError::input(&file, format!("cannot write output: {e}")))?;
    tmp.persist(path).map_err(|e| DriverError::input(&file, format!("cannot write output: {}", e.error)))?;
    Ok(())
}
