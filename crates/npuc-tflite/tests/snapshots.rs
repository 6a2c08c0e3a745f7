//! Snapshots of the printed IR of every fixture. A change here is a change in what npuc
//! reads from real models: review it with `cargo insta review` before accepting.

mod common;

use bytes::Bytes;
use npuc_ir::print::{print_module, PrintOptions};

#[test]
fn printed_ir_of_every_fixture() {
    for path in common::fixtures() {
        let m = npuc_tflite::import(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
        let text = print_module(&m, &PrintOptions::default());
        insta::assert_snapshot!(common::stem(&path), text);
    }
}
