//! One method (strategy or baseline) of a backtest: its flow, the closed loop of tool offsets,
//! the portfolio, and the trend signal's scores against the truth.

use std::path::Path;
use std::sync::Arc;

use crate::flow::{Flow, FlowError, Item, NoCheckpoint, Sink};
use crate::pipeline::{Accepted, KeyHint, Processor, ProcessorConfig};
use crate::record::{Event, EventBody, Payload, Record};
use crate::signal::perf::Portfolio;
use crate::signal::truth::{TruthScore, TruthTrack};

use super::BacktestError;

/// One method (strategy or baseline) being replayed: a flow plus what the backtest adds around
/// it — the closed loop of tool offsets and the portfolio's per-period returns.
pub(super) struct Lane<K: Sink> {
    pub(super) flow: Flow<K, NoCheckpoint>,
    pub(super) portfolio: Portfolio,
    /// Measurements: the tool offset applied so far per key (closed loop), and the key's tool;
    /// by the replay's key slot.
    offsets: Vec<Option<(f64, Option<u32>)>>,
    /// Whether any record carried a true value.
    pub(super) truth: bool,
    /// Bars with a `true_trend` column: the trend signal scored against it, by key slot.
    trend_truth: Vec<Option<TruthTrack>>,
    /// Where each key lives in this lane's processor, by key slot (no lookup per record).
    hints: Vec<KeyHint>,
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
            offsets: Vec::new(),
            truth: false,
            trend_truth: Vec::new(),
            hints: Vec::new(),
            truth_score: TruthScore::default(),
        })
    }

    /// Runs one record through this lane, its measurement shifted by the key's offsets so far;
    /// the caller's item is never changed. `key` is the record's key slot (the replay numbers
    /// keys densely); `None` for an undecodable record.
    pub(super) fn step(
        &mut self,
        item: &Item<'_>,
        key: Option<usize>,
    ) -> Result<Option<Accepted>, FlowError> {
        // Only a measurement of a numbered key is shifted, in a copy; anything else goes in as
        // it came.
        let shifted = match (&item.record, key) {
            (Ok(rec), Some(k)) => match rec.payload {
                Payload::Measurement(mut m) => {
                    let slot = grown(&mut self.offsets, k).get_or_insert((0.0, m.tool));
                    if m.tool.is_some() && m.tool != slot.1 {
                        // A new tool, touched off at nominal: the old tool's wear offset is gone.
                        *slot = (0.0, m.tool);
                    }
                    m.value += slot.0;
                    m.true_value = m.true_value.map(|v| v + slot.0);
                    self.truth |= m.true_value.is_some();
                    Some(Item {
                        record: Ok(Record {
                            payload: Payload::Measurement(m),
                            ..*rec
                        }),
                        ..*item
                    })
                }
                Payload::Bar(_) => None,
            },
            _ => None,
        };
        let input = shifted.as_ref().unwrap_or(item);
        let submitted = match key {
            Some(k) => {
                if k >= self.hints.len() {
                    self.hints.resize(k + 1, KeyHint::default());
                }
                self.flow.submit_hinted(input, &mut self.hints[k])?
            }
            None => self.flow.submit(input)?,
        };
        let acc = submitted.result.ok();
        // Key and time are the caller's: only the measured value was shifted.
        let (Ok(rec), Some(k)) = (&item.record, key) else {
            return Ok(acc);
        };
        for e in submitted.events {
            if let EventBody::ToolCompensation { offset, .. } = e.body {
                if let Some(Some(slot)) = self.offsets.get_mut(k) {
                    slot.0 += offset;
                }
            }
        }
        if let (Payload::Bar(b), Some(_)) = (rec.payload, &acc) {
            let (tracks, score) = (&mut self.trend_truth, &mut self.truth_score);
            score_truth(tracks, score, k, b.true_trend, submitted.events);
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
        for track in self.trend_truth.iter().flatten() {
            track.finish(&mut score);
        }
        score
    }
}

/// Scores an accepted bar's trend signal against its `true_trend`; a bar without one only
/// moves the signal of a key already scored.
fn score_truth(
    tracks: &mut Vec<Option<TruthTrack>>,
    score: &mut TruthScore,
    key: usize,
    true_trend: Option<f64>,
    events: &[Event],
) {
    let event = events.iter().rev().find_map(|e| match e.body {
        EventBody::Trend { direction, .. } => Some(direction),
        _ => None,
    });
    match true_trend {
        Some(x) => grown(tracks, key)
            .get_or_insert_with(TruthTrack::default)
            .bar(x, event, score),
        None => {
            if let (Some(d), Some(Some(track))) = (event, tracks.get_mut(key)) {
                track.signal(d);
            }
        }
    }
}

/// The entry of key slot `k`, the table grown (with `None`) to hold it.
fn grown<T>(table: &mut Vec<Option<T>>, k: usize) -> &mut Option<T> {
    if k >= table.len() {
        table.resize_with(k + 1, || None);
    }
    &mut table[k]
}
