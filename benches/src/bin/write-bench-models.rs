//! Writes the generated benchmark models as `.tflite` files into a directory, so peers
//! (LiteRT, `tools/compare-tflite-io.py`) can load exactly what npuc's benches measure.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write-bench-models DIR");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    for (name, int8) in [("mobilenet_v2_100_224_int8", true), ("mobilenet_v2_100_224_f32", false)] {
        let bytes = match npuc_tflite::export(&npuc_benches::mobilenet_v2(1.0, 224, int8)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {name}: {e}");
                return ExitCode::from(1);
            }
        };
        let path = dir.join(format!("{name}.tflite"));
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}
