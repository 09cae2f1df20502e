//! Owned copies of the records a source lends: what crosses a thread (a source read ahead of
//! the stage, the backtest's baseline lane on its own thread). Keys and raw bytes are packed in
//! one buffer each, so a batch costs a few allocations however many records it holds, and a
//! cleared batch is reused without any.

use std::ops::Range;

use crate::record::{Payload, Record, Ts};

use super::source::{Item, Raw, Undecodable};

/// Owned copies of records lent by a source, each with a tag of the caller's (`()` for none).
pub struct Batch<T = ()> {
    keys: String,
    raw: Vec<u8>,
    rows: Vec<Row<T>>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            keys: String::new(),
            raw: Vec::new(),
            rows: Vec::new(),
        }
    }
}

struct Row<T> {
    pos: u64,
    tag: T,
    record: Result<Owned, Undecodable>,
    raw_key: Option<Range<usize>>,
    raw_payload: Option<Range<usize>>,
}

struct Owned {
    key: Range<usize>,
    ts: Ts,
    payload: Payload,
}

impl<T: Copy> Batch<T> {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.raw.clear();
        self.rows.clear();
    }

    /// Appends a copy of `item` with its tag.
    pub fn push(&mut self, item: &Item<'_>, tag: T) {
        let record = match &item.record {
            Ok(r) => {
                let start = self.keys.len();
                self.keys.push_str(r.key);
                Ok(Owned {
                    key: start..self.keys.len(),
                    ts: r.ts,
                    payload: r.payload,
                })
            }
            Err(u) => Err(u.clone()),
        };
        let mut copy = |bytes: Option<&[u8]>| {
            bytes.map(|b| {
                let start = self.raw.len();
                self.raw.extend_from_slice(b);
                start..self.raw.len()
            })
        };
        let raw_key = copy(item.raw.key);
        let raw_payload = copy(item.raw.payload);
        self.rows.push(Row {
            pos: item.pos,
            tag,
            record,
            raw_key,
            raw_payload,
        });
    }

    /// The records as items again, in order, each with its tag.
    pub fn items(&self) -> impl Iterator<Item = (Item<'_>, T)> {
        self.items_from(0)
    }

    /// [`Batch::items`] from the `start`-th record on (none when `start >= len`).
    pub fn items_from(&self, start: usize) -> impl Iterator<Item = (Item<'_>, T)> {
        let rows = self.rows.get(start..).unwrap_or_default();
        rows.iter().map(|row| {
            let record = match &row.record {
                Ok(o) => Ok(Record {
                    key: &self.keys[o.key.clone()],
                    ts: o.ts,
                    payload: o.payload,
                }),
                Err(u) => Err(u.clone()),
            };
            let raw = Raw {
                key: row.raw_key.clone().map(|r| &self.raw[r]),
                payload: row.raw_payload.clone().map(|r| &self.raw[r]),
            };
            let item = Item {
                pos: row.pos,
                record,
                raw,
            };
            (item, row.tag)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Bar, Invalid, Measurement};

    fn bar(close: f64) -> Payload {
        Payload::Bar(Bar {
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: None,
            true_trend: None,
        })
    }

    /// A batch gives back exactly the items it was given — keys, raw bytes, undecodable
    /// records and slots — across a clear and a refill.
    #[test]
    fn a_batch_round_trips_its_items() {
        let undecodable = Undecodable {
            reason: Invalid::EmptyKey,
            detail: "row 3: null key".into(),
        };
        let items = [
            (
                Item {
                    pos: 7,
                    record: Ok(Record {
                        key: "AAPL",
                        ts: 1,
                        payload: bar(10.0),
                    }),
                    raw: Raw::default(),
                },
                Some(0),
            ),
            (
                Item {
                    pos: 8,
                    record: Err(undecodable),
                    raw: Raw {
                        key: Some(b"k"),
                        payload: Some(b"{not json"),
                    },
                },
                None,
            ),
            (
                Item {
                    pos: 9,
                    record: Ok(Record {
                        key: "bore/diameter",
                        ts: 2,
                        payload: Payload::Measurement(Measurement {
                            value: 1.5,
                            nominal: Some(1.5),
                            lsl: Some(1.4),
                            usl: Some(1.6),
                            tool: Some(2),
                            true_value: None,
                        }),
                    }),
                    raw: Raw {
                        key: Some(b"bore/diameter"),
                        payload: Some(b"{}"),
                    },
                },
                Some(1),
            ),
        ];
        let mut batch = Batch::default();
        for round in 0..2 {
            for (item, slot) in &items {
                batch.push(item, *slot);
            }
            assert_eq!(batch.len(), items.len(), "round {round}");
            let back: Vec<_> = batch.items().collect();
            for ((got, got_slot), (want, want_slot)) in back.iter().zip(&items) {
                assert_eq!(got, want, "round {round}");
                assert_eq!(got_slot, want_slot, "round {round}");
            }
            drop(back);
            batch.clear();
            assert!(batch.is_empty());
        }
    }
}
