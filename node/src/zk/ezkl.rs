//! Running ezkl (a Python package, pinned by `scripts/install-ezkl`) through the driver script
//! embedded in this binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;

use super::ZkError;

/// The driver, written next to each circuit and run with ezkl's Python.
const DRIVER: &str = include_str!("ezkl_driver.py");
/// The line prefix of the driver's result on stdout; every other line is progress.
const RESULT_PREFIX: &str = "{";

/// Where `scripts/install-ezkl` puts ezkl's Python, relative to the project root.
pub const INSTALL_DIR: &str = ".tools/ezkl";

/// The ezkl version the project is tested with (`scripts/install-ezkl` pins it).
pub const EZKL_VERSION: &str = "23.0.5";

/// A Python that can `import ezkl`.
#[derive(Clone, Debug)]
pub struct Ezkl {
    python: PathBuf,
}

impl Ezkl {
    /// `explicit`, else `$VERINFER_EZKL_PYTHON`, else `.tools/ezkl/bin/python` in the current
    /// directory or one of its parents: the first that imports ezkl.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, ZkError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = explicit {
            candidates.push(p.to_path_buf());
        } else if let Some(p) = std::env::var_os("VERINFER_EZKL_PYTHON") {
            candidates.push(p.into());
        } else if let Ok(cwd) = std::env::current_dir() {
            candidates.extend(
                cwd.ancestors()
                    .map(|dir| dir.join(INSTALL_DIR).join("bin/python")),
            );
        }
        for python in candidates {
            let imports = Command::new(&python)
                .args(["-c", "import ezkl, onnx"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if imports {
                return Ok(Self { python });
            }
        }
        Err(ZkError::EzklMissing)
    }

    /// Run the driver's `command` in `dir` and decode its result. Progress lines go to stderr.
    ///
    /// ezkl 23 (a Rust extension under Python) now and then aborts on its own (`Fatal Python
    /// error: PyGILState_Release`, SIGABRT or SIGSEGV) at interpreter shutdown; the driver leaves
    /// with `os._exit` to skip that, and a run killed by a signal is still retried once.
    pub fn run<T: DeserializeOwned>(
        &self,
        dir: &Path,
        command: &str,
        args: &[&Path],
        env: &[(&str, &str)],
    ) -> Result<T, ZkError> {
        match self.run_once(dir, command, args, env) {
            Err(Crash::Signal(status)) => {
                eprintln!("ezkl: `{command}` died ({status}); running it again");
                self.run_once(dir, command, args, env)
                    .map_err(Crash::into_error(command))
            }
            other => other.map_err(Crash::into_error(command)),
        }
    }

    fn run_once<T: DeserializeOwned>(
        &self,
        dir: &Path,
        command: &str,
        args: &[&Path],
        env: &[(&str, &str)],
    ) -> Result<T, Crash> {
        let driver = dir.join("ezkl_driver.py");
        std::fs::write(&driver, DRIVER).map_err(|e| Crash::Error(ZkError::io(&driver, e)))?;
        let mut child = Command::new(&self.python)
            .arg(&driver)
            .arg(command)
            .arg(dir)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Crash::Error(ZkError::io(&self.python, e)))?;
        let mut result = None;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let line = line.map_err(|e| Crash::Error(ZkError::io(&self.python, e)))?;
                if line.starts_with(RESULT_PREFIX) && line.ends_with('}') {
                    result = Some(line);
                } else if !line.trim().is_empty() {
                    eprintln!("{line}");
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| Crash::Error(ZkError::io(&self.python, e)))?;
        if status.code().is_none() {
            return Err(Crash::Signal(status));
        }
        if !status.success() {
            return Err(Crash::Error(ZkError::Ezkl(format!(
                "`{command}` exited with {status}"
            ))));
        }
        let line = result
            .ok_or_else(|| Crash::Error(ZkError::Ezkl(format!("`{command}` printed no result"))))?;
        serde_json::from_str(&line).map_err(|e| {
            Crash::Error(ZkError::Ezkl(format!(
                "`{command}` printed an unreadable result: {e}"
            )))
        })
    }
}

/// How one run of the driver failed.
enum Crash {
    /// Killed by a signal (retried once).
    Signal(std::process::ExitStatus),
    /// Anything else.
    Error(ZkError),
}

impl Crash {
    fn into_error(command: &str) -> impl FnOnce(Crash) -> ZkError + '_ {
        move |crash| match crash {
            Crash::Signal(status) => ZkError::Ezkl(format!("`{command}` died twice ({status})")),
            Crash::Error(e) => e,
        }
    }
}
