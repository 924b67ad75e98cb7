//! Admission of uploaded models in a child process, within a time and memory budget.
//!
//! Admission runs tract's type inference and optimizer on bytes anyone can upload. The checks
//! before it (node count, shapes folded and capped, element caps) bound what is known; the
//! budget bounds the rest. `verinfer_uploadModel` first runs `verinfer model check -` on the
//! bytes in a child process, killed when it takes longer than the time budget or its resident
//! memory passes the memory budget (polled from `/proc/<pid>/status`). Only bytes the child
//! admitted within budget are admitted by the node itself, so a model that would hold the node
//! or the machine hostage costs a child process, not the node. One upload is checked at a time.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default wall-clock budget of one admission.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default resident-memory budget of one admission, in bytes.
pub const DEFAULT_MAX_RSS: u64 = 1 << 30;

/// How often the child's memory and exit are checked.
const POLL: Duration = Duration::from_millis(5);

/// The budget of one sandboxed admission.
#[derive(Clone, Debug)]
pub struct AdmissionBudget {
    /// The `verinfer` binary the child runs (`model check -`).
    pub program: PathBuf,
    /// Wall-clock time the child may take.
    pub timeout: Duration,
    /// Resident memory the child may use, in bytes.
    pub max_rss: u64,
}

/// Why sandboxed admission did not admit a model.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Admission refused the model (the child's reason).
    #[error("{0}")]
    Refused(String),
    /// The child ran past the time budget and was killed.
    #[error("admission took longer than its budget of {0:?} and was stopped")]
    OverTime(Duration),
    /// The child's resident memory passed the budget and it was killed.
    #[error("admission used more than its budget of {} MiB of memory and was stopped", .0 >> 20)]
    OverMemory(u64),
    /// Another upload held the sandbox for the whole time budget.
    #[error("another model is being admitted; retry later")]
    Busy,
    /// The child could not be run, or ended without a verdict.
    #[error("admission could not run: {0}")]
    Failed(String),
}

/// Runs sandboxed admissions one at a time.
#[derive(Debug)]
pub struct Sandbox {
    budget: AdmissionBudget,
    one_at_a_time: Mutex<()>,
}

impl Sandbox {
    /// A sandbox with this budget.
    pub fn new(budget: AdmissionBudget) -> Self {
        Self {
            budget,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// The budget.
    pub fn budget(&self) -> &AdmissionBudget {
        &self.budget
    }

    /// Admit `bytes` in a child process; `Ok` when the child admitted them within budget.
    pub fn check(&self, bytes: &[u8]) -> Result<(), SandboxError> {
        let waited = Instant::now();
        let _turn = loop {
            match self.one_at_a_time.try_lock() {
                Ok(guard) => break guard,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if waited.elapsed() > self.budget.timeout {
                        return Err(SandboxError::Busy);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        run_child(&self.budget, bytes)
    }
}

fn run_child(budget: &AdmissionBudget, bytes: &[u8]) -> Result<(), SandboxError> {
    let failed = |what: &str, e: std::io::Error| SandboxError::Failed(format!("{what}: {e}"));
    let mut child = Command::new(&budget.program)
        .args(["model", "check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(&format!("starting {}", budget.program.display()), e))?;
    let started = Instant::now();
    // Feed stdin and drain the outputs on their own threads, so no pipe can fill and stall.
    let mut stdin = child.stdin.take();
    let input = bytes.to_vec();
    let feeder = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            // A child killed early closes the pipe; its exit says why.
            let _ = stdin.write_all(&input);
        }
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| failed("waiting", e))? {
            break Ok(status);
        }
        if started.elapsed() > budget.timeout {
            break Err(SandboxError::OverTime(budget.timeout));
        }
        if resident_bytes(child.id()).is_some_and(|rss| rss > budget.max_rss) {
            break Err(SandboxError::OverMemory(budget.max_rss));
        }
        std::thread::sleep(POLL);
    };
    if status.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = feeder.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        return Ok(());
    }
    // `model check` prints `refused  -: <reason>` for a refused model.
    if let Some(reason) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("refused  "))
        .map(|r| r.strip_prefix("-: ").unwrap_or(r))
    {
        return Err(SandboxError::Refused(reason.to_string()));
    }
    let said = stderr.trim();
    Err(SandboxError::Failed(if said.is_empty() {
        format!("the admission process ended with {status}")
    } else {
        format!("the admission process ended with {status}: {said}")
    }))
}

/// Resident memory of process `pid`, where `/proc` says.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
