//! `canonicalize` over every fixture model through the library: import, run under the pass
//! manager with verification and numerics, export, re-import, and check the re-imported
//! model computes bit for bit what the original did. The fixtures come from the TFLite
//! converter, which already canonicalizes, so beyond folding f16 dequantizes and densifies
//! little should change, and a second run must change nothing.

use std::path::{Path, PathBuf};

use npuc_canonicalize::CANONICALIZE;
use npuc_interp::{random_inputs, Interpreter, Options, Tensor};
use npuc_ir::{Module, Op};
use npuc_pass::{Instrumentation, Numerics, PassManager, PassOptions, PipelineReport};

const SEED: u64 = 7;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .collect();
    files.sort();
    files
}

fn canonicalize(module: &mut Module) -> PipelineReport {
    let options = PassOptions::validate(CANONICALIZE.name, CANONICALIZE.options, &[]).unwrap();
    let pass = (CANONICALIZE.build)(&options).unwrap();
    let inst = Instrumentation { verify_each: true, check_numerics: true, seed: SEED, ..Default::default() };
    PassManager::new(vec![pass]).with_instrumentation(inst).run(module, &mut std::io::sink()).unwrap()
}

/// Runs the main graph of `m` (through the graphs its IF/WHILE ops call).
fn execute(m: &Module, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
    let interp = Interpreter::for_module(m, 0, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    interp.run(inputs).map_err(|e| e.to_string())
}

#[test]
fn canonicalize_every_fixture_exactly() {
    let files = fixtures();
    assert!(files.len() >= 20, "expected the fixture models, found {files:?}");
    let mut compared = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut module = npuc_tflite::import_file(path).unwrap();
        let original = module.clone();
        let report = canonicalize(&mut module);
        npuc_ir::verify_module(&module).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (_, pass_report) = &report.passes[0];
        println!(
            "{name}: -{} +{} ops; {}",
            pass_report.ops_removed,
            pass_report.ops_added,
            pass_report.notes.join("; ")
        );
        assert!(pass_report.notes.last().unwrap().starts_with("fixed point"), "{name}: {pass_report:?}");

        // Through the file format and back.
        let bytes = npuc_tflite::export(&module).unwrap_or_else(|e| panic!("{name}: export: {e}"));
        let reimported = npuc_tflite::import(bytes.into()).unwrap_or_else(|e| panic!("{name}: re-import: {e}"));
        npuc_ir::verify_module(&reimported).unwrap_or_else(|e| panic!("{name}: re-imported: {e}"));
        assert_eq!(reimported.graphs[0].op_count(), module.graphs[0].op_count(), "{name}");

        let before = &original.graphs[0];
        let inputs = random_inputs(before, SEED);
        match execute(&original, inputs.clone()) {
            Ok(want) => {
                let numerics = report.stages.stages.last().unwrap().numerics.as_ref().unwrap();
                let Numerics::Compared { outputs } = numerics else { panic!("{name}: {numerics:?}") };
                assert!(outputs.iter().all(|o| o.max_abs_error == 0.0), "{name}: {outputs:?}");
                let got = execute(&reimported, inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(want, got, "{name}: re-imported model computes something else");
                compared += 1;
            }
            Err(reason) => {
                // Only models the interpreter cannot run at all (opaque ops) escape the
                // numerical check; they are still verified and round-tripped above.
                let opaque = before.op_ids().any(|id| matches!(before.op(id).op, Op::Opaque(_)));
                assert!(opaque, "{name}: reference does not run without an opaque op: {reason}");
                println!("{name}: numerics not checked: {reason}");
            }
        }

        // A second run finds nothing left to do.
        let mut again = reimported;
        let report = canonicalize(&mut again);
        assert!(report.passes[0].1.is_unchanged(), "{name}: second run changed {:?}", report.passes[0].1);
    }
    // Guards against the reference failing wholesale (e.g. a broken interpreter) turning
    // this into a check of nothing: most fixtures run.
    assert!(compared * 4 >= files.len() * 3, "only {compared} of {} fixtures compared numerically", files.len());
}
