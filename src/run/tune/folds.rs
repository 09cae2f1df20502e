//! Walk-forward time folds: train and test windows as fractions of the data's time span.
//!
//! With span `S = end - start`, fold `i` (from 0) tests on
//! `[start + (train + i·test)·S, start + (train + (i+1)·test)·S)` and trains on the `train·S`
//! before it (rolling) or on everything from `start` before it (anchored). The last test window
//! is closed at `end`. Train always ends where its test begins, so no window sees its future.

use serde::Serialize;

/// A half-open time window `[start, end)` of record timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn contains(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// One fold: parameters are chosen on `train` and scored on `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fold {
    pub train: Window,
    pub test: Window,
}

/// How to cut the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldSpec {
    pub folds: usize,
    /// Fraction of the span in each (rolling) or the first (anchored) train window.
    pub train: f64,
    /// Fraction of the span in each test window.
    pub test: f64,
    pub anchored: bool,
}

impl FoldSpec {
    /// Refuses a layout that does not fit in the span.
    pub fn check(&self) -> Result<(), String> {
        if self.folds == 0 {
            return Err("[tune] folds must be at least 1".into());
        }
        if !(self.train > 0.0 && self.test > 0.0) {
            return Err("[tune] train and test must be positive fractions of the span".into());
        }
        let used = self.train + self.folds as f64 * self.test;
        if used > 1.0 + 1e-9 {
            return Err(format!(
                "[tune] train + folds × test = {used:.3} exceeds the span (1.0); lower test or folds"
            ));
        }
        Ok(())
    }
}

/// The folds over `[first_ts, last_ts]`, in time order.
pub fn folds(spec: &FoldSpec, first_ts: i64, last_ts: i64) -> Result<Vec<Fold>, String> {
    spec.check()?;
    let span = (last_ts - first_ts) as f64;
    let at = |frac: f64| first_ts + (frac * span).round() as i64;
    let mut out = Vec::with_capacity(spec.folds);
    for i in 0..spec.folds {
        let test_start = at(spec.train + i as f64 * spec.test);
        let last = i + 1 == spec.folds && spec.train + spec.folds as f64 * spec.test > 1.0 - 1e-9;
        let test_end = if last {
            last_ts + 1
        } else {
            at(spec.train + (i + 1) as f64 * spec.test)
        };
        let train_start = if spec.anchored {
            first_ts
        } else {
            at(i as f64 * spec.test)
        };
        if !(train_start < test_start && test_start < test_end) {
            return Err(format!(
                "fold {i} is empty: the data's span is too short for {} folds",
                spec.folds
            ));
        }
        out.push(Fold {
            train: Window {
                start: train_start,
                end: test_start,
            },
            test: Window {
                start: test_start,
                end: test_end,
            },
        });
    }
    Ok(out)
}
