//! Owned copies of the records a source lends: what crosses a thread (a source read ahead of
//! the stage, then the backtest's baseline lane on its own thread). Keys and raw bytes are
//! packed in one buffer each, so a batch costs a few allocations however many records it holds,
//! and a cleared batch is reused without any.

use std::ops::Range;

use crate::record::{Payload, Record, Ts};

use super::source::{Item, Raw, Undecodable};

/// Owned copies of records lent by a source, in order.
#[derive(Default)]
pub struct Batch {
    keys: String,
    raw: Vec<u8>,
    rows: Vec<Row>,
}

struct Row {
    pos: u64,
    record: Result<Owned, Undecodable>,
    raw_key: Option<Range<usize>>,
    raw_payload: Option<Range<usize>>,
}

struct Owned {
    key: Range<usize>,
    ts: Ts,
    payload: Payload,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An empty batch with room for as many records, key bytes and raw bytes as this one holds:
    /// a new batch of similar records then fills without growing.
    pub fn sized_like(&self) -> Batch {
        Batch {
            keys: String::with_capacity(self.keys.len()),
            raw: Vec::with_capacity(self.raw.len()),
            rows: Vec::with_capacity(self.rows.len()),
        }
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.raw.clear();
        self.rows.clear();
    }

    /// Appends a copy of `item`.
    pub fn push(&mut self, item: &Item<'_>) {
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
            record,
            raw_key,
            raw_payload,
        });
    }

    /// The records as items again, in order.
    pub fn items(&self) -> impl Iterator<Item = Item<'_>> {
        self.items_from(0)
    }

    /// [`Batch::items`] from the `start`-th record on (none when `start >= len`).
    pub fn items_from(&self, start: usize) -> impl Iterator<Item = Item<'_>> {
        (start..self.len()).map(|i| self.item(i))
    }

    /// The key of the `i`-th record (`None`: it could not be decoded); panics if `i >= len`.
    #[inline]
    pub fn key(&self, i: usize) -> Option<&str> {
        match &self.rows[i].record {
            Ok(o) => Some(&self.keys[o.key.clone()]),
            Err(_) => None,
        }
    }

    /// The `i`-th record as an item; panics if `i >= len`.
    #[inline]
    pub fn item(&self, i: usize) -> Item<'_> {
        let row = &self.rows[i];
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
        Item {
            pos: row.pos,
            record,
            raw,
        }
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
    /// records — across a clear and a refill, also from a record on.
    #[test]
    fn a_batch_round_trips_its_items() {
        let undecodable = Undecodable {
            reason: Invalid::EmptyKey,
            detail: "row 3: null key".into(),
        };
        let items = [
            Item {
                pos: 7,
                record: Ok(Record {
                    key: "AAPL",
                    ts: 1,
                    payload: bar(10.0),
                }),
                raw: Raw::default(),
            },
            Item {
                pos: 8,
                record: Err(undecodable),
                raw: Raw {
                    key: Some(b"k"),
                    payload: Some(b"{not json"),
                },
            },
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
        ];
        let mut batch = Batch::default();
        for round in 0..2 {
            for item in &items {
                batch.push(item);
            }
            assert_eq!(batch.len(), items.len(), "round {round}");
            let back: Vec<_> = batch.items().collect();
            assert_eq!(back, items, "round {round}");
            let keys: Vec<_> = (0..batch.len()).map(|i| batch.key(i)).collect();
            assert_eq!(keys, [Some("AAPL"), None, Some("bore/diameter")]);
            let tail: Vec<_> = batch.items_from(1).collect();
            assert_eq!(tail, items[1..], "round {round}");
            assert_eq!(batch.items_from(3).count(), 0);
            drop((back, tail));
            batch.clear();
            assert!(batch.is_empty());
        }
    }
}
