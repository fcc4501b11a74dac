//! Python RQ for the interop tests: one virtualenv per pinned `rq` release, under
//! `target/rq-venv` (2.12.0) and `target/rq-venv-3.0.0`, made on first use (one process makes
//! it; others wait on a file lock). `.ci/run` makes the same ones, with the same markers.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A pinned Python RQ release rqrs is compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rq {
    /// rq 2.12.0.
    V2_12,
    /// rq 3.0.0.
    V3_0,
}

impl Rq {
    /// Every pinned release, oldest first.
    pub const ALL: [Rq; 2] = [Rq::V2_12, Rq::V3_0];

    /// The release's version, as pip pins it.
    pub fn version(self) -> &'static str {
        match self {
            Rq::V2_12 => "2.12.0",
            Rq::V3_0 => "3.0.0",
        }
    }

    /// The release's virtualenv (`RQRS_RQ_VENV` overrides 2.12.0's, `RQRS_RQ3_VENV` 3.0.0's).
    pub fn venv_dir(self) -> PathBuf {
        let (variable, default) = match self {
            Rq::V2_12 => (
                "RQRS_RQ_VENV",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/rq-venv"),
            ),
            Rq::V3_0 => (
                "RQRS_RQ3_VENV",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/rq-venv-3.0.0"),
            ),
        };
        std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
    }

    /// The virtualenv's `python`, with this `rq` installed; made if missing.
    ///
    /// # Panics
    /// When `python3` is missing or the install fails (with pip's output).
    pub fn python(self) -> PathBuf {
        static PYTHONS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = match self {
            Rq::V2_12 => &PYTHONS[0],
            Rq::V3_0 => &PYTHONS[1],
        };
        slot.get_or_init(|| make_venv(self)).clone()
    }

    /// Runs a Python script with this release's interpreter, `REDIS_URL` set to `url`, and
    /// `args` as `sys.argv[1:]`; returns its standard output.
    ///
    /// # Panics
    /// When the script fails (with its output).
    pub fn run(self, url: &str, script: &str, args: &[&str]) -> String {
        self.run_with_env(url, script, args, &[])
    }

    /// As [`run`](Self::run), with more environment variables (`RQ_KEY_PREFIX`, say).
    ///
    /// # Panics
    /// When the script fails (with its output).
    pub fn run_with_env(
        self,
        url: &str,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let output = Command::new(self.python())
            .arg("-c")
            .arg(script)
            .args(args)
            .env("REDIS_URL", url)
            .envs(env.iter().copied())
            .output()
            .expect("the venv's python runs");
        assert!(
            output.status.success(),
            "python (rq {}) failed:\n--- script\n{script}\n--- stdout\n{}--- stderr\n{}",
            self.version(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// This release's `rq` command line, as a `Command` ready for arguments.
    pub fn cli(self) -> Command {
        let mut command = Command::new(self.python());
        command.args([
            "-c",
            "import sys; from rq.cli import main; sys.argv[0] = 'rq'; sys.exit(main())",
        ]);
        command
    }
}

fn make_venv(rq: Rq) -> PathBuf {
    let dir = rq.venv_dir();
    let python = dir.join("bin/python");
    let marker = dir.join(format!(".rq-{}", rq.version()));
    if marker.exists() {
        return python;
    }
    let parent = dir.parent().expect("the venv directory has a parent");
    std::fs::create_dir_all(parent).expect("the venv's parent directory");
    let lock = std::fs::File::create(parent.join(format!(".rq-venv-{}.lock", rq.version())))
        .expect("the venv lock file");
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
                .arg(format!("rq=={}", rq.version())),
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
