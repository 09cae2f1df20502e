//! One method (strategy or baseline) of a backtest: its flow, the closed loop of tool offsets,
//! the portfolio, and the trend signal's scores against the truth.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::flow::{Flow, FlowError, Item, NoCheckpoint, Sink};
use crate::pipeline::{Accepted, Processor, ProcessorConfig};
use crate::record::{Event, EventBody, Payload};
use crate::signal::perf::Portfolio;
use crate::signal::truth::{TruthScore, TruthTrack};

use super::BacktestError;

/// One method (strategy or baseline) being replayed: a flow plus what the backtest adds around
/// it — the closed loop of tool offsets and the portfolio's per-period returns.
pub(super) struct Lane<K: Sink> {
    pub(super) flow: Flow<K, NoCheckpoint>,
    pub(super) portfolio: Portfolio,
    /// Measurements: the tool offset applied so far per key (closed loop), and the key's tool.
    offsets: HashMap<Box<str>, (f64, Option<u32>)>,
    /// Whether any record carried a true value.
    pub(super) truth: bool,
    /// Bars with a `true_trend` column: the trend signal scored against it, per key.
    trend_truth: HashMap<Box<str>, TruthTrack>,
    truth_score: TruthScore,
}

impl<K: Sink> Lane<K> {
    pub(super) fn new(cfg: ProcessorConfig, file: &Path, sink: K) -> Result<Self, BacktestError> {
        let processor = Processor::new(Arc::new(cfg)).map_err(|source| BacktestError::Params {
            config: file.to_path_buf(),
            source,
        })?;
        Ok(Self {
            flow: Flow::new(processor, sink, NoCheckpoint),
            portfolio: Portfolio::default(),
            offsets: HashMap::new(),
            truth: false,
            trend_truth: HashMap::new(),
            truth_score: TruthScore::default(),
        })
    }

    /// Runs one record through this lane, its measurement shifted by the key's offsets so far;
    /// the caller's item is never changed.
    pub(super) fn step(&mut self, item: &Item<'_>) -> Result<Option<Accepted>, FlowError> {
        let mut shifted = item.clone();
        if let Ok(rec) = &mut shifted.record {
            if let Payload::Measurement(m) = &mut rec.payload {
                let slot = match self.offsets.get_mut(rec.key) {
                    Some(s) => s,
                    None => self.offsets.entry(rec.key.into()).or_insert((0.0, m.tool)),
                };
                if m.tool.is_some() && m.tool != slot.1 {
                    // A new tool, touched off at nominal: the old tool's wear offset is gone.
                    *slot = (0.0, m.tool);
                }
                m.value += slot.0;
                m.true_value = m.true_value.map(|v| v + slot.0);
                self.truth |= m.true_value.is_some();
            }
        }
        let submitted = self.flow.submit(shifted)?;
        let acc = submitted.result.ok();
        // Key and time are the caller's: only the measured value was shifted.
        let Ok(rec) = &item.record else {
            return Ok(acc);
        };
        for e in submitted.events {
            if let EventBody::ToolCompensation { offset, .. } = e.body {
                if let Some(slot) = self.offsets.get_mut(rec.key) {
                    slot.0 += offset;
                }
            }
        }
        if let (Payload::Bar(b), Some(_)) = (rec.payload, &acc) {
            let (tracks, score) = (&mut self.trend_truth, &mut self.truth_score);
            score_truth(tracks, score, rec.key, b.true_trend, submitted.events);
        }
        if let Some(acc) = &acc {
            let net = acc.book.gross - acc.book.cost;
            let keys = self.flow.processor().key_count();
            self.portfolio.add(rec.ts, net, keys);
        }
        Ok(acc)
    }

    /// The ground-truth counts of the trend signal, every key finished (all zero without a
    /// `true_trend` column).
    pub(super) fn truth_score(&self) -> TruthScore {
        let mut score = self.truth_score.clone();
        for track in self.trend_truth.values() {
            track.finish(&mut score);
        }
        score
    }
}

/// Scores an accepted bar's trend signal against its `true_trend`; a bar without one only
/// moves the signal of a key already scored.
fn score_truth(
    tracks: &mut HashMap<Box<str>, TruthTrack>,
    score: &mut TruthScore,
    key: &str,
    true_trend: Option<f64>,
    events: &[Event],
) {
    let event = events.iter().rev().find_map(|e| match e.body {
        EventBody::Trend { direction, .. } => Some(direction),
        _ => None,
    });
    match true_trend {
        Some(x) => {
            let track = match tracks.get_mut(key) {
                Some(t) => t,
                None => tracks.entry(key.into()).or_default(),
            };
            track.bar(x, event, score);
        }
        None => {
            if let (Some(d), Some(track)) = (event, tracks.get_mut(key)) {
                track.signal(d);
            }
        }
    }
}
