//! Many input files read as one stream: the files a pattern names, and the k-way merge of their
//! rows by (ts, file index, row), shared by every file source.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use super::SourceError;
use crate::record::{Record, Ts};

/// One file's read position, as the merge sees it. A file format supplies the rows; the merge
/// only orders them.
pub(crate) trait Cursor {
    /// Moves to the next row (to the first one on the first call) and checks its order against
    /// the previous rows of the file; false at the end of the file.
    fn advance(&mut self) -> Result<bool, SourceError>;

    /// The merge key of the current row: its ts, or for a row without a usable ts the last
    /// usable ts before it (`Ts::MIN` at the start of the file).
    fn head(&self) -> Ts;

    /// The current row, borrowing from the cursor's buffer; `None` once the file is exhausted.
    fn record(&self) -> Option<Record<'_>>;
}

/// Yields the rows of many cursors in (head, file index, row) order: a min-heap holds one entry
/// per cursor that has a current row. Ties go to the earlier file, and within a file rows keep
/// their order, so a run is deterministic.
pub(crate) struct Merge<C> {
    cursors: Vec<C>,
    /// Cursors with a current row, except the active one: min-heap on (head, file index).
    heap: BinaryHeap<Reverse<(Ts, usize)>>,
    /// The cursor whose current row was returned last; it is advanced on the next call.
    active: Option<usize>,
    rows_read: u64,
}

impl<C: Cursor> Merge<C> {
    /// Moves every cursor to its first row.
    pub(crate) fn new(mut cursors: Vec<C>) -> Result<Merge<C>, SourceError> {
        let mut heap = BinaryHeap::with_capacity(cursors.len());
        for (i, c) in cursors.iter_mut().enumerate() {
            if c.advance()? {
                heap.push(Reverse((c.head(), i)));
            }
        }
        Ok(Merge {
            cursors,
            heap,
            active: None,
            rows_read: 0,
        })
    }

    /// The next row in merge order, or `None` when every cursor is exhausted. The record
    /// borrows from its cursor, so it must be dropped before the next call.
    #[inline]
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        let next = match self.active.take() {
            // The cursor just read from usually stays the smallest: compare it with the heap's
            // top instead of a push and pop.
            Some(f) if self.cursors[f].advance()? => {
                let mine = (self.cursors[f].head(), f);
                match self.heap.peek() {
                    Some(&Reverse(top)) if top < mine => {
                        self.heap.push(Reverse(mine));
                        self.heap.pop().map(|Reverse((_, g))| g)
                    }
                    _ => Some(f),
                }
            }
            _ => self.heap.pop().map(|Reverse((_, g))| g),
        };
        let Some(f) = next else {
            return Ok(None);
        };
        self.active = Some(f);
        self.rows_read += 1;
        Ok(self.cursors[f].record())
    }

    /// The cursors, in file order.
    pub(crate) fn cursors(&self) -> &[C] {
        &self.cursors
    }

    /// Rows returned so far.
    pub(crate) fn rows_read(&self) -> u64 {
        self.rows_read
    }
}

/// The files `pattern` names, sorted by path: the file itself, every `*.{ext}` file of a
/// directory, or the files a glob matches.
pub(crate) fn matched_files(pattern: &str, ext: &'static str) -> Result<Vec<PathBuf>, SourceError> {
    let p = Path::new(pattern);
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let glob_pattern = if p.is_dir() {
        let dir = glob::Pattern::escape(pattern.trim_end_matches(['/', '\\']));
        format!("{dir}/*.{ext}")
    } else {
        pattern.to_string()
    };
    let paths = glob::glob(&glob_pattern).map_err(|source| SourceError::BadPattern {
        pattern: pattern.to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| SourceError::Open {
            file: e.path().to_path_buf(),
            source: e.into(),
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SourceError::NoMatch {
            pattern: pattern.to_string(),
            ext,
        });
    }
    files.sort();
    Ok(files)
}
