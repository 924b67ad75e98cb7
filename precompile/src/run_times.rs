//! How long a model's runs took: a fixed-bucket histogram kept with atomics, for the node's
//! metrics. Only observed, never read by execution: timing cannot reach chain state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (the last bucket, `+Inf`, is implied).
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Run durations, counted per bucket.
#[derive(Debug, Default)]
pub struct RunTimes {
    /// Runs per bucket (not cumulative), `+Inf` last.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of every run's duration, nanoseconds.
    sum_nanos: AtomicU64,
}

/// A copy of [`RunTimes`] at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTimesSnapshot {
    /// `(upper bound in seconds, runs in that bucket)`, not cumulative, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    /// Runs counted.
    pub count: u64,
    /// Sum of their durations, seconds.
    pub sum_seconds: f64,
}

impl RunTimes {
    /// Count one run of `elapsed`.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> RunTimesSnapshot {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.counts)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        RunTimesSnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_lands_in_the_first_bucket_that_holds_it() {
        let times = RunTimes::default();
        times.observe(Duration::from_micros(50));
        times.observe(Duration::from_millis(3));
        times.observe(Duration::from_secs(10));
        let snapshot = times.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.buckets[0], (0.0001, 1));
        assert_eq!(snapshot.buckets[5], (0.005, 1));
        assert_eq!(snapshot.buckets[BUCKETS.len()], (f64::INFINITY, 1));
        assert!((snapshot.sum_seconds - 10.00305).abs() < 1e-9);
    }
}
