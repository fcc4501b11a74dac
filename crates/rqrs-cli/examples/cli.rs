//! The whole `rqrs` command line around the fixture functions, as a user's own binary gets it
//! with `rqrs_cli::run(functions)`:
//!
//! ```text
//! cargo run --example cli -- --url redis://127.0.0.1:6379 enqueue fixtures.add :1 :2
//! cargo run --example cli -- --url redis://127.0.0.1:6379 worker-pool -n 2 --burst default
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    rqrs_cli::run(rqrs_test::fixtures::functions())
}
