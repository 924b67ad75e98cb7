//! The gas schedule a chain was created with, recorded in its database beside its genesis.
//!
//! A model's gas is fixed at admission by the schedule (see `verinfer_precompile::gas`), so a
//! chain replays to the same receipts only under the schedule it ran with. The node records
//! the schedule when it creates a chain and prices models with the recorded one from then on,
//! whatever `--gas-schedule` or the build's default says; a replay reads the source's. A chain
//! made before schedules were recorded ran under [`GasSchedule::first`]: it is recorded as that
//! on its next start. So the default of new chains can change without changing old chains'.

use anyhow::Context;
use verinfer_precompile::GasSchedule;

use crate::storage::Storage;

/// The database meta key of the recorded schedule (its JSON).
const META: &str = "gas_schedule";

/// The schedule of the chain in `storage`: the recorded one; for a chain that records none,
/// [`GasSchedule::first`] (recorded from now on); for an empty database, `asked` or the default
/// (recorded). A schedule `asked` of an existing chain must be its own.
pub fn of_chain(storage: &Storage, asked: Option<&GasSchedule>) -> anyhow::Result<GasSchedule> {
    let existing = match recorded(storage)? {
        Some(schedule) => Some(schedule),
        None if storage.head()?.is_some() => {
            record(storage, &GasSchedule::first())?;
            Some(GasSchedule::first())
        }
        None => None,
    };
    match (existing, asked) {
        (Some(schedule), Some(asked)) if &schedule != asked => anyhow::bail!(
            "this chain was created with another gas schedule ({}); a chain keeps its schedule \
             (leave out --gas-schedule, or start a new chain)",
            serde_json::to_string(&schedule)?
        ),
        (Some(schedule), _) => Ok(schedule),
        (None, asked) => {
            let schedule = asked.cloned().unwrap_or_default();
            record(storage, &schedule)?;
            Ok(schedule)
        }
    }
}

/// The schedule recorded in `storage`, if any.
pub fn recorded(storage: &Storage) -> anyhow::Result<Option<GasSchedule>> {
    storage
        .meta(META)?
        .map(|bytes| serde_json::from_slice(&bytes))
        .transpose()
        .context("the database's gas schedule does not decode")
}

/// Record `schedule` as the chain's.
pub fn record(storage: &Storage, schedule: &GasSchedule) -> anyhow::Result<()> {
    storage.set_meta(META, &serde_json::to_vec(schedule)?)?;
    Ok(())
}

/// Read a schedule file (`--gas-schedule`): JSON with any of the schedule's fields, the rest
/// taking their defaults.
pub fn read_file(path: &std::path::Path) -> anyhow::Result<GasSchedule> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a gas schedule", path.display()))
}
