//! Python RQ for the interop tests: a virtualenv under `target/rq-venv` with the pinned
//! `rq` release, made on first use (one process makes it; others wait on a file lock).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The pinned Python RQ release rqrs is compatible with.
pub const RQ_VERSION: &str = "2.12.0";

/// The virtualenv's directory (`RQRS_RQ_VENV` overrides it).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("RQRS_RQ_VENV").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/rq-venv")),
        PathBuf::from,
    )
}

/// The virtualenv's `python`, with `rq==2.12.0` installed; made if missing.
///
/// # Panics
/// When `python3` is missing or the install fails (with pip's output).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make_venv).clone()
}

fn make_venv() -> PathBuf {
    let dir = venv_dir();
    let python = dir.join("bin/python");
    let marker = dir.join(format!(".rq-{RQ_VERSION}"));
    if marker.exists() {
        return python;
    }
    let parent = dir.parent().expect("the venv directory has a parent");
    std::fs::create_dir_all(parent).expect("the venv's parent directory");
    let lock = std::fs::File::create(parent.join(".rq-venv.lock")).expect("the venv lock file");
    lock.lock().expect("the venv lock");
    if !marker.exists() {
        run_ok(
            Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg("--clear")
                .arg(&dir),
            "python3 -m venv",
        );
        run_ok(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .arg(format!("rq=={RQ_VERSION}")),
            "pip install rq",
        );
        std::fs::write(&marker, "").expect("the venv marker");
    }
    python
}

fn run_ok(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run ({error}); install python3 with venv"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a Python script with the venv's interpreter, `REDIS_URL` set to `url`, and `args` as
/// `sys.argv[1:]`; returns its standard output.
///
/// # Panics
/// When the script fails (with its output).
pub fn run(url: &str, script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .env("REDIS_URL", url)
        .output()
        .expect("the venv's python runs");
    assert!(
        output.status.success(),
        "python failed:\n--- script\n{script}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The venv's `rq` command line, as a `Command` ready for arguments.
pub fn rq_cli() -> Command {
    let mut command = Command::new(python());
    command.args([
        "-c",
        "import sys; from rq.cli import main; sys.argv[0] = 'rq'; sys.exit(main())",
    ]);
    command
}
