//! The examples of rqrs-cli as programs for the tests to run, shared by the test binaries.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// An example of this crate, next to the `rqrs` binary.
///
/// The examples are built (or brought up to date) once per run of this test binary: `cargo
/// test --all-targets` builds examples only as test harnesses, not as the programs these tests
/// run, and a plain `cargo test` may run against a build of them older than the library.
pub(crate) fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_rqrs"))
        .parent()
        .expect("the binary is in a directory");
    BUILT.get_or_init(|| build_examples(profile_dir));
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing after cargo build -p rqrs-cli --examples",
        path.display()
    );
    path
}

/// `cargo build -p rqrs-cli --examples` into the target directory and profile of the binary
/// under test (`target/<profile dir>/rqrs`). Cargo releases its build lock before it runs tests.
fn build_examples(profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile directory in {}", profile_dir.display()),
    };
    let target_dir = profile_dir
        .parent()
        .expect("the profile is in a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    // Cargo gives this test process the variables of the package under test (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR...). Some build scripts (ring's) rerun when those change, so an inner
    // cargo that inherited them would rebuild them, and the next outer build rebuild them
    // back: every run would compile them twice.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name)
        {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--package", env!("CARGO_PKG_NAME"), "--examples"])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build -p rqrs-cli --examples failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
