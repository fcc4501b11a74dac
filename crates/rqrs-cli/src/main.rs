//! `rqrs`: the command line. Its worker runs no functions of its own; build a binary around
//! your functions with `rqrs_cli::run` to get the same command line with a worker for them.

use std::process::ExitCode;

fn main() -> ExitCode {
    rqrs_cli::run(rqrs::Functions::new())
}
