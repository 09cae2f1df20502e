//! File replay as flow parts: input files (Parquet or CSV) as a [`Source`] whose positions are
//! row numbers, and the `events.parquet` / `fit.parquet` writers as a [`Sink`].
//!
//! A new file format is one reader in `io/` plus one arm in [`FileSource::open`].

use std::path::Path;

use crate::flow::{FlowError, Item, Pulled, Sink, Source, Step};
use crate::record::{Event, FitRow, Record, RecordKind};

use super::csv::CsvSource;
use super::parquet::{
    EventWriter, FitWriter, ParquetSource, SinkError, SourceError, SourceOptions,
};

/// The file formats a replay reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    /// Comma-separated text with a header row (the Parquet column names).
    Csv,
}

/// One of the file readers, merged by `ts` over every matched file.
enum Reader {
    Parquet(ParquetSource),
    Csv(CsvSource),
}

impl Reader {
    #[inline]
    fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        match self {
            Reader::Parquet(p) => p.next_record(),
            Reader::Csv(c) => c.next_record(),
        }
    }
}

/// Input files as a flow source: records in `(ts, file, row)` order, positions from 0.
pub struct FileSource {
    reader: Reader,
    pos: u64,
    total: u64,
}

impl FileSource {
    /// Opens every file matching `pattern` (a file, a directory or a glob) in `format`.
    pub fn open(
        format: FileFormat,
        pattern: &str,
        kind: RecordKind,
        opts: SourceOptions,
    ) -> Result<FileSource, SourceError> {
        let (reader, total) = match format {
            FileFormat::Parquet => {
                let p = ParquetSource::open(pattern, kind, opts)?;
                let total = p.total_rows();
                (Reader::Parquet(p), total)
            }
            // The row count of a CSV file is not known without reading it: 0 = unknown.
            FileFormat::Csv => (Reader::Csv(CsvSource::open(pattern, kind, opts)?), 0),
        };
        Ok(FileSource {
            reader,
            pos: 0,
            total,
        })
    }
}

impl Source for FileSource {
    fn pull(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Item<'_>) -> Result<(), FlowError>,
    ) -> Result<Pulled, FlowError> {
        let mut n = 0;
        while n < max {
            let rec = self
                .reader
                .next_record()
                .map_err(|e| FlowError::new(Step::Pull, e))?;
            let Some(rec) = rec else {
                return Ok(if n == 0 {
                    Pulled::End
                } else {
                    Pulled::Records(n)
                });
            };
            f(Item {
                pos: self.pos,
                record: Ok(rec),
                raw: Default::default(),
            })?;
            self.pos += 1;
            n += 1;
        }
        Ok(Pulled::Records(n))
    }

    fn total_hint(&self) -> u64 {
        self.total
    }
}

/// `events.parquet` and, with `emit_fit`, `fit.parquet`. Files become visible under their
/// names only in [`ParquetSink::finish`] (written to a temporary name, synced, renamed), so
/// `flush` has nothing to do: a replay is durable when it ends.
pub struct ParquetSink {
    events: EventWriter,
    fit: Option<FitWriter>,
}

impl ParquetSink {
    /// Creates `dir/events.parquet` and, when `fit`, `dir/fit.parquet`.
    pub fn create(dir: &Path, fit: bool) -> Result<ParquetSink, SinkError> {
        Ok(ParquetSink {
            events: EventWriter::create(&dir.join("events.parquet"))?,
            fit: if fit {
                Some(FitWriter::create(&dir.join("fit.parquet"))?)
            } else {
                None
            },
        })
    }

    /// Writes the footers and renames the files into place.
    pub fn finish(self) -> Result<(), SinkError> {
        self.events.finish()?;
        if let Some(f) = self.fit {
            f.finish()?;
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    type Error = SinkError;

    fn event(&mut self, e: &Event) -> Result<(), SinkError> {
        self.events.write(e)
    }

    fn wants_fit(&self) -> bool {
        self.fit.is_some()
    }

    fn fit(&mut self, key: &str, row: &FitRow, regime: &str) -> Result<(), SinkError> {
        match self.fit.as_mut() {
            Some(f) => f.write(key, row, regime),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
