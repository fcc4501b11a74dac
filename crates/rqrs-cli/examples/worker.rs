//! A worker with the fixture functions (`fixtures.add`, `fixtures.echo`, `fixtures.fail`,
//! `fixtures.sleep`, `fixtures.spin`, `fixtures.set_meta`, `fixtures.noop`, `fixtures.append`,
//! `fixtures.progress`, `fixtures.abort`, `fixtures.allocate`, `fixtures.pid`, and the callbacks
//! `fixtures.on_success_mark` and `fixtures.on_failure_mark`; see `rqrs_test::fixtures`), which
//! tests and Python producers can name:
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/worker --url redis://127.0.0.1:6379 --burst --concurrency 8 default
//! target/release/examples/worker --isolation process --max-memory-per-job 1000000000 default
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    rqrs_cli::run_worker(rqrs_test::fixtures::functions())
}
