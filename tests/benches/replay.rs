//! Replay rate against production rate, side by side in one run (issue target: replay,
//! inference re-execution included, at ≥ 80% of the rate the node produced the same blocks).
//!
//! A node with a data directory produces a chain under automine, driven over JSON-RPC by one
//! client: `rounds` inferences on every test model plus a transfer per round (one block per
//! transaction). Then the same chain is replayed three ways: `verify --rpc` against the running
//! node, `verify --data-dir` on a copy of its data, and `--replay-from` into a fresh database
//! on disk (what a second node does). The inference-heavy chain is also verified by the
//! `verinfer` CLI (`target/release/verinfer`, built by `cargo build --release`) pinned to one
//! core and to two with `taskset`: the "2 cores against 1", whole process included.
//!
//! Run: `SOLC=$(scripts/install-solc) cargo bench -p verinfer-tests --bench replay [-- ROUNDS]`

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use verinfer_node::replay::{self, data_dir::DataDir, rpc::Rpc, Options, Report};
use verinfer_node::storage::Storage;
use verinfer_tests::harness::Devnet;
use verinfer_tests::workload::{record_inferences, test_models};

fn main() -> anyhow::Result<()> {
    let rounds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()
        .context("usage: replay [ROUNDS]")?
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let models = test_models()?;
    eprintln!(
        "producing {} inferences over {} models and {rounds} transfers…",
        rounds * models.len() as u64,
        models.len()
    );
    let (work, head, rpc_report) = runtime.block_on(async {
        let devnet = Devnet::start_with(|c| {
            c.data_dir = Some(dir.path().to_path_buf());
            c.model_dirs = vec![verinfer_tests::models()];
        })
        .await?;
        let probe = devnet.deploy("InferenceProbe", ()).await?;
        let work = record_inferences(&devnet, probe, &models, rounds).await?;
        let url = devnet.url();
        eprintln!("replaying over RPC…");
        let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
            replay::replay(&Rpc::new(&url)?, &Options::default(), |_, _| {})
        })
        .await??;
        let head = devnet.node().node.chain().head().header.number;
        devnet.stop().await;
        anyhow::Ok((work, head, report))
    })?;

    eprintln!("replaying from the data directory…");
    let copy = tempfile::tempdir()?;
    copy_dir(dir.path(), copy.path())?;
    let dir_report = replay::replay(&DataDir::open(copy.path())?, &Options::default(), |_, _| {})?;

    // The same replay with the model re-runs and signature checks on 0 (the EVM's thread),
    // 1 and 2 worker threads; then on an inference-heavy chain (the 2 000-node stress model,
    // about a millisecond a run), where the re-runs dominate.
    let by_threads = replay_by_threads(copy.path())?;
    eprintln!("producing an inference-heavy chain: {rounds} runs of the 2 000-node model…");
    let heavy_dir = tempfile::tempdir()?;
    let stress = verinfer_tests::models().join("stress");
    let heavy_models = verinfer_precompile::ModelStore::default()
        .add_dir(&stress)?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    runtime.block_on(async {
        let devnet = Devnet::start_with(|c| {
            c.data_dir = Some(heavy_dir.path().to_path_buf());
            c.model_dirs = vec![stress.clone()];
        })
        .await?;
        let probe = devnet.deploy("InferenceProbe", ()).await?;
        record_inferences(&devnet, probe, &heavy_models, rounds).await?;
        devnet.stop().await;
        anyhow::Ok(())
    })?;
    let heavy_copy = tempfile::tempdir()?;
    copy_dir(heavy_dir.path(), heavy_copy.path())?;
    let heavy_by_threads = replay_by_threads(heavy_copy.path())?;
    let heavy_by_cores = verify_by_cores(heavy_copy.path())?;

    eprintln!("replaying into a fresh database (as --replay-from does)…");
    let target = tempfile::tempdir()?;
    let sink = Storage::open(&target.path().join("chain.redb"))?;
    let into_report = replay::replay_into(
        &DataDir::open(copy.path())?,
        &Options::default(),
        &sink,
        |_, _| {},
    )?;

    for r in [&rpc_report, &dir_report, &into_report]
        .into_iter()
        .chain(by_threads.iter().map(|(_, r)| r))
        .chain(heavy_by_threads.iter().map(|(_, r)| r))
    {
        anyhow::ensure!(r.mismatches.is_empty(), "replay found {:?}", r.mismatches);
    }
    // The deployment block is not part of the timed workload.
    let produced = work.transactions as f64 / work.elapsed.as_secs_f64();
    let rate = |d: Duration| head as f64 / d.as_secs_f64();
    println!(
        "\n{} blocks, {} inferences, {} transactions\n",
        head, dir_report.inferences, dir_report.transactions
    );
    println!("| | seconds | blocks/s | ÷ production |");
    println!("|---|---:|---:|---:|");
    println!(
        "| production (automine, one RPC client) | {:.2} | {produced:.0} | 1.00 |",
        work.elapsed.as_secs_f64()
    );
    for (name, r) in [
        ("verify --rpc (running node)", &rpc_report),
        ("verify --data-dir (copy)", &dir_report),
        ("replay into a new database (--replay-from)", &into_report),
    ] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} |",
            r.elapsed.as_secs_f64(),
            rate(r.elapsed),
            rate(r.elapsed) / produced
        );
    }
    print_by_threads("this chain", &by_threads);
    print_by_threads(
        "the inference-heavy chain (2 000-node model)",
        &heavy_by_threads,
    );
    print_by_cores(&heavy_by_cores);
    Ok(())
}

/// Replay a data directory with the model re-runs on 0, 1 and 2 worker threads.
fn replay_by_threads(dir: &Path) -> anyhow::Result<Vec<(usize, Report)>> {
    let mut out = Vec::new();
    for threads in [0, 1, 2] {
        eprintln!("replaying {}, {threads} worker threads…", dir.display());
        let options = Options {
            threads: Some(threads),
            ..Options::default()
        };
        out.push((
            threads,
            replay::replay(&DataDir::open(dir)?, &options, |_, _| {})?,
        ));
    }
    Ok(out)
}

fn print_by_threads(chain: &str, by_threads: &[(usize, Report)]) {
    let inline = by_threads[0].1.elapsed.as_secs_f64();
    println!(
        "\n{chain}: {} blocks, {} inferences\n",
        by_threads[0].1.blocks, by_threads[0].1.inferences
    );
    println!("| verify --data-dir, re-runs on | seconds | blocks/s | speed-up |");
    println!("|---|---:|---:|---:|");
    for (threads, r) in by_threads {
        let name = match threads {
            0 => "the EVM's thread".to_string(),
            n => format!("{n} worker thread(s)"),
        };
        println!(
            "| {name} | {:.2} | {:.0} | {:.2}× |",
            r.elapsed.as_secs_f64(),
            r.blocks as f64 / r.elapsed.as_secs_f64(),
            inline / r.elapsed.as_secs_f64()
        );
    }
}

/// `verinfer verify --data-dir` (the CLI, default threads) pinned to one core and to two with
/// `taskset`, alternating (so a slower spell of the machine hits both): the median of five runs
/// each, in seconds. Empty when `taskset` or the binary is missing, or the machine has fewer
/// than two cores.
fn verify_by_cores(dir: &Path) -> anyhow::Result<Vec<(&'static str, f64)>> {
    const RUNS: usize = 5;
    let bin = verinfer_tests::node::verinfer_bin();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let taskset = std::process::Command::new("taskset").arg("-V").output();
    if !bin.exists() || cores < 2 || taskset.is_err() {
        eprintln!(
            "skipping verify by cores (needs taskset, 2 cores and {})",
            bin.display()
        );
        return Ok(Vec::new());
    }
    eprintln!("verify --data-dir on 1 core and on 2, {RUNS} times each…");
    let pinned = [("1 core", "0"), ("2 cores", "0,1")];
    let mut runs = [Vec::new(), Vec::new()];
    for _ in 0..RUNS {
        for ((name, cpus), times) in pinned.iter().zip(&mut runs) {
            let started = std::time::Instant::now();
            let status = std::process::Command::new("taskset")
                .args(["-c", cpus])
                .arg(&bin)
                .args(["verify", "--data-dir"])
                .arg(dir)
                .stdout(std::process::Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "verify on {name} failed: {status}");
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(pinned
        .iter()
        .zip(runs)
        .map(|((name, _), mut times)| {
            times.sort_by(f64::total_cmp);
            (*name, times[RUNS / 2])
        })
        .collect())
}

fn print_by_cores(by_cores: &[(&str, f64)]) {
    let Some((_, one)) = by_cores.first() else {
        return;
    };
    println!("\nthe inference-heavy chain, `verinfer verify --data-dir` (whole process, median of 5, alternating) pinned with taskset:\n");
    println!("| cores | seconds | speed-up |");
    println!("|---|---:|---:|");
    for (name, seconds) in by_cores {
        println!("| {name} | {seconds:.2} | {:.2}× |", one / seconds);
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
