//! The results of one run, as JSON and as a markdown report with the ratios and the goals.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::inprocess::{EvmSpeed, ModelCost};
use crate::peer::Kind;
use crate::workload::Stats;
use crate::Sizes;

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Results {
    pub mode: &'static str,
    pub machine: String,
    pub command: String,
    /// Seconds since the Unix epoch at the start.
    pub started: u64,
    pub sizes: Sizes,
    /// workload → node → stats.
    pub workloads: BTreeMap<String, BTreeMap<String, Stats>>,
    /// Peak RSS of each node after its workloads, bytes.
    pub idle_rss: BTreeMap<String, u64>,
    pub scaling: Vec<ScalingRow>,
    pub funded: Vec<ScalingRow>,
    pub costs: Vec<ModelCost>,
    pub models: Vec<ModelRow>,
    pub evm: Vec<EvmSpeed>,
    pub goals: Vec<Goals>,
    /// The validator network row.
    pub network: Option<crate::network::NetworkRow>,
    /// The same network row measured with another verinfer build (`--network-baseline`), in
    /// the same run: the build's description and its row.
    pub network_baseline: Option<(String, crate::network::NetworkRow)>,
}

impl Results {
    pub(crate) fn new(sizes: &Sizes, full: bool) -> Self {
        Self {
            mode: if full { "full" } else { "quick" },
            machine: machine(),
            // scripts/bench names itself; run directly, the binary's own arguments.
            command: std::env::var("VERINFER_BENCH_COMMAND")
                .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            sizes: sizes.clone(),
            workloads: BTreeMap::new(),
            idle_rss: BTreeMap::new(),
            scaling: Vec::new(),
            funded: Vec::new(),
            costs: Vec::new(),
            models: Vec::new(),
            evm: Vec::new(),
            goals: Vec::new(),
            network: None,
            network_baseline: None,
        }
    }

    pub(crate) fn record(&mut self, workload: &str, node: Kind, stats: Stats) {
        self.workloads
            .entry(workload.to_string())
            .or_default()
            .insert(node.to_string(), stats);
    }

    /// Median gas/s of the EVM loops: the calibration's reference.
    fn evm_median(&self) -> f64 {
        median(self.evm.iter().map(|e| e.gas_per_second).collect())
    }

    fn stat(&self, workload: &str, node: Kind) -> Option<&Stats> {
        self.workloads.get(workload)?.get(&node.to_string())
    }
}

/// Transfer throughput at one point of a scaling run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ScalingRow {
    pub node: String,
    pub prior_transactions: u64,
    /// Funded accounts, for the state-size run.
    pub accounts: Option<u64>,
    pub transfers_per_second: f64,
    pub p50_us: f64,
    /// Transactions of the probe that stalled (see `Client::wait_success`).
    pub stalled: u64,
    pub peak_rss_bytes: u64,
}

/// One model: bare tract, the precompile call, and its transactions on the verinfer node.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelRow {
    pub cost: ModelCost,
    pub infer_tx: Option<Stats>,
    pub predict_call: Option<Stats>,
    /// The node's plain transfer latency: the fixed per-transaction cost.
    pub transfer_tx: Option<Stats>,
    /// infer tx p50 ÷ (1.2 × bare tract + transfer tx p50).
    pub latency_ratio: Option<f64>,
    /// The `infer` tx p50 of the cheapest model (smallest bare run): the fixed cost of an
    /// inference transaction (calldata, record slots, log, witness, signature) when the model
    /// itself costs next to nothing.
    pub baseline: Option<(String, f64)>,
    /// infer tx p50 ÷ (1.2 × bare tract + baseline infer tx p50); the goal's bound is 1.
    pub baseline_ratio: Option<f64>,
}

impl ModelRow {
    pub(crate) fn new(
        cost: ModelCost,
        infer_tx: Option<Stats>,
        predict_call: Option<Stats>,
        transfer_tx: Option<Stats>,
        baseline: Option<(String, f64)>,
    ) -> Self {
        let latency_ratio = match (&infer_tx, &transfer_tx) {
            (Some(i), Some(t)) => Some(i.p50_us / (1.2 * cost.bare_us + t.p50_us)),
            _ => None,
        };
        let baseline_ratio = match (&infer_tx, &baseline) {
            (Some(i), Some((_, b))) => Some(i.p50_us / (1.2 * cost.bare_us + b)),
            _ => None,
        };
        Self {
            cost,
            infer_tx,
            predict_call,
            transfer_tx,
            latency_ratio,
            baseline,
            baseline_ratio,
        }
    }
}

/// One goal of the benchmark issue and where it stands.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Goals {
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

impl Goals {
    pub(crate) fn evaluate(r: &Results) -> Vec<Goals> {
        let mut goals = Vec::new();
        let ratio = |w: &str| {
            let v = r.stat(w, Kind::Verinfer)?.per_second;
            let a = r.stat(w, Kind::Anvil)?.per_second;
            Some(v / a)
        };
        // A goal met by a ratio at or above `target`.
        let at_least = |goal: &str, measured: Option<f64>, target: f64, what: &str| Goals {
            goal: goal.to_string(),
            measured: measured.map_or("not measured".into(), |m| format!("{m:.2}{what}")),
            met: measured.map(|m| m >= target),
        };
        goals.push(at_least(
            "transfers/s ≥ 1.5× anvil's (1 sender)",
            ratio("transfers, 1 sender"),
            1.5,
            "×",
        ));
        goals.push(at_least(
            "eth_call/s ≥ anvil's",
            ratio("eth_call (view function)"),
            1.0,
            "×",
        ));
        let readers = format!("reads, {} clients, while 1 sender sends", crate::READERS);
        goals.push(at_least(
            &format!(
                "{} clients' reads/s (eth_call view, predict, eth_getBalance) while 1 sender \
                 sends ≥ 1.5× anvil's",
                crate::READERS
            ),
            ratio(&readers),
            1.5,
            "×",
        ));
        let kept = |node: Kind| {
            let with = r
                .stat(
                    &format!("transfers, 1 sender, while {} clients read", crate::READERS),
                    node,
                )?
                .per_second;
            Some(with / r.stat("transfers, 1 sender", node)?.per_second)
        };
        goals.push(Goals {
            goal: format!(
                "transfers/s while {} clients read ≥ 0.8× without them",
                crate::READERS
            ),
            measured: kept(Kind::Verinfer).map_or("not measured".into(), |k| {
                let anvil = kept(Kind::Anvil).map_or(String::new(), |a| format!(" (anvil {a:.2})"));
                format!("{k:.2}{anvil}")
            }),
            met: kept(Kind::Verinfer).map(|k| k >= 0.8),
        });
        if let Some(net) = &r.network {
            let single = r.stat(
                &format!("transfer burst, {} senders", net.senders),
                Kind::Verinfer,
            );
            goals.push(at_least(
                &format!(
                    "network: {} validators finalize ≥ 0.5× the single node's transfers/s (a \
                     burst of {} transfers from {} senders)",
                    net.validators, net.burst.count, net.senders
                ),
                single.map(|s| net.burst.per_second / s.per_second.max(1e-9)),
                0.5,
                "×",
            ));
            let p50 = net.light.p50_us / 1e3;
            goals.push(Goals {
                goal: "network: p50 send → finalized receipt ≤ 20 ms under light load (1 sender)"
                    .into(),
                measured: format!("{p50:.1} ms"),
                met: Some(p50 <= 20.0),
            });
        }
        // Flatness: last step's throughput over the first's, per node.
        let flat = |node: Kind| {
            let rows: Vec<&ScalingRow> = r
                .scaling
                .iter()
                .filter(|s| s.node == node.to_string())
                .collect();
            let (first, last) = (rows.first()?, rows.last()?);
            Some((
                last.transfers_per_second / first.transfers_per_second,
                first.prior_transactions,
                last.prior_transactions,
            ))
        };
        if let Some((f, from, to)) = flat(Kind::Verinfer) {
            let anvil =
                flat(Kind::Anvil).map_or(String::new(), |(a, _, _)| format!(" (anvil {a:.2})"));
            goals.push(Goals {
                goal: "transfers/s flat within 10% from 1k to 100k prior transactions".into(),
                measured: format!("{f:.2} of the {from}-step rate at {to}{anvil}"),
                met: Some(f >= 0.9),
            });
        }
        // Peak RSS growth (MiB) from the first scaling step to the last, over how many
        // transactions.
        let growth = |node: Kind| {
            let rows: Vec<&ScalingRow> = r
                .scaling
                .iter()
                .filter(|s| s.node == node.to_string())
                .collect();
            let (first, last) = (rows.first()?, rows.last()?);
            let txs = last
                .prior_transactions
                .checked_sub(first.prior_transactions)?;
            let mib = (last.peak_rss_bytes as f64 - first.peak_rss_bytes as f64) / (1 << 20) as f64;
            (txs > 0).then_some((mib, txs))
        };
        if let Some((anvil, anvil_txs)) = growth(Kind::Anvil) {
            for node in [Kind::Verinfer, Kind::VerinferEphemeral] {
                let Some((grew, txs)) = growth(node) else {
                    continue;
                };
                // anvil's growth over the same transactions (linear between its own steps).
                let allowed = anvil * txs as f64 / anvil_txs as f64 + 10.0;
                goals.push(Goals {
                    goal: format!(
                        "{node}: peak RSS growth ≤ anvil's over the same transactions + 10 MiB"
                    ),
                    measured: format!(
                        "+{grew:.1} MiB over {txs} transactions; anvil +{anvil:.1} MiB over \
                         {anvil_txs}, so at most {allowed:.1} MiB"
                    ),
                    met: Some(grew <= allowed),
                });
            }
        }
        if let Some(mlp) = r.models.iter().find(|m| m.cost.name == "mlp") {
            let transfer = mlp.latency_ratio.map_or("not measured".into(), |x| {
                format!("{x:.2} with a transfer's")
            });
            goals.push(Goals {
                goal: "infer tx latency ≤ 1.2× bare tract + fixed per-transaction cost (MLP)"
                    .into(),
                measured: match (&mlp.baseline, mlp.baseline_ratio) {
                    (Some((name, _)), Some(x)) => format!(
                        "{x:.2} of the bound with an `infer` tx's fixed cost ({name}'s); {transfer}"
                    ),
                    _ => transfer,
                },
                met: mlp.baseline_ratio.map(|x| x <= 1.0),
            });
        }
        let evm_median = r.evm_median();
        if let Some(mlp) = r.costs.iter().find(|c| c.name == "mlp") {
            let x = mlp.compute_gas_per_second / evm_median;
            goals.push(Goals {
                goal: "gas calibration: MLP compute gas/s within 2× of EVM gas/s (median loop)"
                    .into(),
                measured: format!("{x:.2}×"),
                met: Some((0.5..=2.0).contains(&x)),
            });
        }
        let by_cpu = |a: &&crate::inprocess::ModelCost, b: &&crate::inprocess::ModelCost| {
            a.cpu_gas_per_second.total_cmp(&b.cpu_gas_per_second)
        };
        if let (Some(low), Some(high)) =
            (r.costs.iter().min_by(by_cpu), r.costs.iter().max_by(by_cpu))
        {
            let (lo, hi) = (
                low.cpu_gas_per_second / evm_median,
                high.cpu_gas_per_second / evm_median,
            );
            goals.push(Goals {
                goal: "gas calibration: every model's CPU gas/s (base + inputs + compute ÷ call \
                       time) within 2× of the EVM median and of every other model's"
                    .into(),
                measured: format!(
                    "{lo:.2}× ({}) to {hi:.2}× ({}): spread {:.2}×",
                    low.name,
                    high.name,
                    hi / lo
                ),
                met: Some(lo >= 0.5 && hi <= 2.0 && hi / lo <= 2.0),
            });
        }
        if let Some(slowest) = r
            .costs
            .iter()
            .min_by(|a, b| a.infer_gas_per_second.total_cmp(&b.infer_gas_per_second))
        {
            let x = slowest.infer_gas_per_second / evm_median;
            goals.push(Goals {
                goal: "gas calibration: every model's infer gas/s ≥ EVM gas/s (a block of \
                       inferences costs no more CPU than an ordinary block of the same gas)"
                    .into(),
                measured: format!("lowest {x:.2}× ({})", slowest.name),
                met: Some(x >= 1.0),
            });
        }
        goals
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb >> 20);
    // The load when the run started (1, 5, 15 minutes): other work on a shared machine.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    format!("{cpu}, {cores} cores, {memory} GiB, load average {load} at the start")
}

fn cell(s: &Stats) -> String {
    let stalled = match s.stalled {
        0 => String::new(),
        n => format!(", {n} stalled"),
    };
    format!(
        "{:.0}/s (p50 {}, p99 {}{stalled})",
        s.per_second,
        micros(s.p50_us),
        micros(s.p99_us)
    )
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The validator network beside the single node (data dir): the same senders, send to receipt
/// (finalized, on the network); a baseline build's network beside it, and the light client's
/// gas.
fn network_section(md: &mut String, r: &Results, net: &crate::network::NetworkRow) {
    // A burst measures throughput only: its latencies are not kept (zero).
    let latency = |us: f64| {
        if us > 0.0 {
            format!("{:.1} ms", us / 1e3)
        } else {
            "—".to_string()
        }
    };
    let _ = writeln!(md, "\n## Validator network\n");
    let _ = writeln!(
        md,
        "`verinfer testnet --validators {}` on loopback (every validator on this machine), block \
         time {} ms ({} ms idle); {} senders at once, each sending its next transaction when the \
         previous one is finalized (a receipt exists only for a finalized block); one sender \
         alone (light load); and a burst of {} transfers from the {} senders, each sending all \
         of its own at once (throughput until the last is finalized). Beside: the single node \
         with its data dir, same senders.\n",
        net.validators,
        net.block_time_ms,
        net.idle_block_time_ms,
        net.senders,
        net.burst.count,
        net.senders
    );
    let single = |workload: &str| {
        r.workloads
            .get(workload)
            .and_then(|by| by.get(&Kind::Verinfer.to_string()))
    };
    let header = titles(&[
        "build",
        "workload",
        "network tx/s",
        "p50",
        "p99",
        "single node tx/s",
        "single p50",
        "network ÷ single",
    ]);
    let mut builds = vec![("this build (BLS12-381 threshold)".to_string(), net)];
    if let Some((name, row)) = &r.network_baseline {
        builds.push((name.clone(), row));
    }
    let rows = builds.iter().flat_map(|(build, row)| {
        [
            (
                "transfers",
                &row.transfers,
                single(&format!("transfers, {} senders", row.senders)),
            ),
            (
                "transfer burst (throughput only)",
                &row.burst,
                single(&format!("transfer burst, {} senders", row.senders)),
            ),
            (
                "transfers, 1 sender (light load)",
                &row.light,
                single("transfers, 1 sender"),
            ),
            (
                "infer (linear; single node: 1 sender)",
                &row.inferences,
                single("infer tx: linear"),
            ),
        ]
        .map(|(name, n, s)| {
            vec![
                build.clone(),
                name.to_string(),
                format!("{:.0}", n.per_second),
                latency(n.p50_us),
                latency(n.p99_us),
                or_dash(s, |s| format!("{:.0}", s.per_second)),
                or_dash(s, |s| latency(s.p50_us)),
                or_dash(s, |s| {
                    format!("{:.2}", n.per_second / s.per_second.max(1e-9))
                }),
            ]
        })
    });
    table(md, &header, true, rows);
    if let Some((_, base)) = &r.network_baseline {
        let ratio = |a: &Stats, b: &Stats| a.per_second / b.per_second.max(1e-9);
        let _ = writeln!(
            md,
            "\nThreshold ÷ baseline, finalized tx/s: transfers {:.2}, infer {:.2}; p50: transfers \
             {:.2}, infer {:.2}.",
            ratio(&net.transfers, &base.transfers),
            ratio(&net.inferences, &base.inferences),
            net.transfers.p50_us / base.transfers.p50_us.max(1e-9),
            net.inferences.p50_us / base.inferences.p50_us.max(1e-9),
        );
    }
    if let Some(gas) = &net.light_client {
        let _ = writeln!(
            md,
            "\n### Light client gas (anvil 1.7.1)\n\n`verinfer relay deploy` then `verinfer relay \
             --record 1` against this network: `InferenceLightClient` checks the header's \
             threshold certificate (hash to G1, one pairing) and proves the record's slots.\n"
        );
        let header = titles(&["call", "gas", "what"]);
        let rows = [
            vec![
                "submitHeader".to_string(),
                gas.header.to_string(),
                "gas used by the transaction: certificate, header, stored state root".to_string(),
            ],
            vec![
                "verifyInference".to_string(),
                gas.record.to_string(),
                format!(
                    "eth_estimateGas, a linear-model record (one 1×1 output; account proof and \
                     every slot's storage proof): {}",
                    gas.record_split
                ),
            ],
        ];
        table(md, &header, true, rows);
    }
}

/// Append a markdown table: `header`, then `rows`; columns after the first are right-aligned
/// when `numeric`.
fn table(
    md: &mut String,
    header: &[String],
    numeric: bool,
    rows: impl IntoIterator<Item = Vec<String>>,
) {
    let align = if numeric { "---:|" } else { "---|" };
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", align.repeat(header.len().saturating_sub(1)));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
}

/// Column titles.
fn titles(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn or_dash<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "—".into(), show)
}

/// The report in markdown.
pub(crate) fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let nodes = [
        Kind::Verinfer,
        Kind::VerinferEphemeral,
        Kind::Anvil,
        Kind::Hardhat,
    ];
    let _ = writeln!(md, "# verinfer benchmarks ({} mode)\n", r.mode);
    let _ = writeln!(md, "Machine: {}. Command: `{}`.\n", r.machine, r.command);
    let _ = writeln!(
        md,
        "One Rust client (alloy, keep-alive HTTP), nodes run one after another on loopback ports, \
         transactions signed before the clock starts; each sender sends its next transaction when \
         the previous one has its receipt (latency is send to receipt). \"Stalled\": a transaction \
         still pending after 2 s under automine, which the client then unsticks with `evm_mine` \
         (the 2 s count). verinfer keeps its chain in a data directory (its default) unless `--ephemeral`.\n"
    );

    let _ = writeln!(md, "## Workloads\n");
    let mut header = vec!["workload".to_string()];
    header.extend(nodes.map(|n| n.to_string()));
    header.extend(titles(&["verinfer ÷ anvil", "verinfer ÷ hardhat"]));
    let rows = r
        .workloads
        .iter()
        .filter(|(w, _)| !w.starts_with("infer tx:") && !w.starts_with("predict eth_call:"))
        .map(|(workload, by_node)| {
            let ratio = |peer: Kind| {
                let v = by_node.get(&Kind::Verinfer.to_string())?.per_second;
                let p = by_node.get(&peer.to_string())?.per_second;
                Some(v / p)
            };
            let mut row = vec![workload.clone()];
            row.extend(nodes.map(|n| or_dash(by_node.get(&n.to_string()), cell)));
            row.push(or_dash(ratio(Kind::Anvil), |x| format!("{x:.2}×")));
            row.push(or_dash(ratio(Kind::Hardhat), |x| format!("{x:.2}×")));
            row
        });
    table(&mut md, &header, true, rows);

    let _ = writeln!(md, "\n## Inference: the precompile beside bare tract\n");
    let _ = writeln!(
        md,
        "In process: a bare tract run of the cached plan, and the whole precompile call (decode, \
         checks, run, record, sign), medians. On the verinfer node (data directory): `infer` \
         transactions, send to receipt. The goal's \"fixed per-transaction cost\" read two ways: \
         a plain transfer's latency, or the `infer` latency of the cheapest model (an inference \
         transaction also carries calldata, record slots, a log and a witness).\n"
    );
    let header = titles(&[
        "model",
        "bare tract",
        "precompile call",
        "`infer` tx p50",
        "infer ÷ (1.2·bare + transfer tx)",
        "infer ÷ (1.2·bare + cheapest model's infer tx)",
        "`infer` tx/s",
        "`predict` eth_call/s",
    ]);
    let rows = r.models.iter().map(|m| {
        vec![
            m.cost.name.clone(),
            micros(m.cost.bare_us),
            micros(m.cost.precompile_us),
            or_dash(m.infer_tx.as_ref(), |s| micros(s.p50_us)),
            or_dash(m.latency_ratio, |x| format!("{x:.2}")),
            or_dash(m.baseline_ratio, |x| format!("{x:.2}")),
            or_dash(m.infer_tx.as_ref(), |s| format!("{:.0}", s.per_second)),
            or_dash(m.predict_call.as_ref(), |s| format!("{:.0}", s.per_second)),
        ]
    });
    table(&mut md, &header, true, rows);

    if let Some(net) = &r.network {
        network_section(&mut md, r, net);
    }

    if !r.scaling.is_empty() {
        let _ = writeln!(md, "\n## Scaling\n");
        let _ = writeln!(md, "Transfers (1 sender, {} each) after N prior transactions (to fresh addresses, so state grows too), and between funded accounts; peak RSS of the node process so far.\n", r.sizes.scaling_probe);
        let header = titles(&[
            "node",
            "prior transactions",
            "funded accounts",
            "transfers/s",
            "p50",
            "stalled",
            "peak RSS",
        ]);
        let rows = r.scaling.iter().chain(&r.funded).map(|s| {
            vec![
                s.node.clone(),
                if s.accounts.is_some() {
                    "—".into()
                } else {
                    s.prior_transactions.to_string()
                },
                or_dash(s.accounts, |a| a.to_string()),
                format!("{:.0}", s.transfers_per_second),
                micros(s.p50_us),
                s.stalled.to_string(),
                mib(s.peak_rss_bytes),
            ]
        });
        table(&mut md, &header, true, rows);
    }

    let _ = writeln!(md, "\n## Gas calibration\n");
    let _ = writeln!(
        md,
        "Ordinary EVM execution (revm, in process, 16M-gas loops):\n"
    );
    let rows = r
        .evm
        .iter()
        .map(|e| vec![e.name.clone(), format!("{:.0} M", e.gas_per_second / 1e6)]);
    table(&mut md, &titles(&["loop", "gas/s"]), true, rows);
    let evm_median = r.evm_median();
    let _ = writeln!(
        md,
        "\nInference under the shipped schedule, against the EVM median {:.0} M gas/s: compute gas \
         ÷ bare tract time; CPU gas (base + inputs + compute, without the record's storage and \
         log) ÷ precompile call time; whole `infer` gas ÷ precompile call time.\n",
        evm_median / 1e6
    );
    let header = titles(&[
        "model",
        "compute gas",
        "compute gas/s",
        "÷ EVM",
        "CPU gas",
        "CPU gas/s",
        "÷ EVM",
        "infer gas",
        "infer gas/s",
        "÷ EVM",
    ]);
    let rows = r.costs.iter().map(|c| {
        let mut row = vec![c.name.clone()];
        for (gas, per_second) in [
            (c.compute_gas, c.compute_gas_per_second),
            (c.cpu_gas, c.cpu_gas_per_second),
            (c.infer_gas, c.infer_gas_per_second),
        ] {
            row.push(gas.to_string());
            row.push(format!("{:.0} M", per_second / 1e6));
            row.push(format!("{:.2}", per_second / evm_median));
        }
        row
    });
    table(&mut md, &header, true, rows);

    if !r.goals.is_empty() {
        let _ = writeln!(md, "\n## Goals\n");
        let rows = r.goals.iter().map(|g| {
            let met = match g.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            };
            vec![g.goal.clone(), g.measured.clone(), met.to_string()]
        });
        table(&mut md, &titles(&["goal", "measured", "met"]), false, rows);
    }
    md
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
