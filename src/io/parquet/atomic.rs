//! [`AtomicParquetWriter`]: a Parquet file that appears under its final name only when it is
//! complete and on disk.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::SinkError;

/// Writes a Parquet file under a temporary name and moves it into place in [`finish`]:
/// footer, fsync of the file, rename over the destination, then (on Unix) fsync of the
/// directory. A reader never sees a half-written file under the final name, and a crash leaves
/// at most the temporary file.
///
/// If the writer is dropped without `finish`, or `finish` fails, the temporary file is removed.
/// The destination is only ever replaced by a complete file.
///
/// The Parquet writer buffers its output itself, so the file is not wrapped in a `BufWriter`.
///
/// [`finish`]: AtomicParquetWriter::finish
pub struct AtomicParquetWriter {
    dest: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    /// `None` once finished (or failed in `finish`).
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl AtomicParquetWriter {
    /// Creates `dest` + `.tmp` (e.g. `events.parquet.tmp`) to be renamed to `dest` by
    /// [`finish`](Self::finish).
    pub fn create(
        dest: &Path,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<AtomicParquetWriter, SinkError> {
        let mut tmp = OsString::from(dest.as_os_str());
        tmp.push(".tmp");
        Self::create_with_tmp(dest, &PathBuf::from(tmp), schema, props)
    }

    /// Like [`create`](Self::create), with the temporary file named by the caller. It must be
    /// on the same file system as `dest` (in practice: the same directory), or the rename fails.
    pub fn create_with_tmp(
        dest: &Path,
        tmp: &Path,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<AtomicParquetWriter, SinkError> {
        let file = File::create(tmp).map_err(|source| SinkError::Create {
            file: dest.to_path_buf(),
            source,
        })?;
        let writer = match ArrowWriter::try_new(file, schema.clone(), Some(props)) {
            Ok(w) => w,
            Err(source) => {
                let _ = std::fs::remove_file(tmp);
                return Err(SinkError::Write {
                    file: dest.to_path_buf(),
                    source,
                });
            }
        };
        Ok(AtomicParquetWriter {
            dest: dest.to_path_buf(),
            tmp: tmp.to_path_buf(),
            schema,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Appends a batch (its schema must be [`schema`](Self::schema)); an empty batch is skipped.
    /// The Parquet writer closes a row group whenever it reaches the row-group size of the
    /// writer properties.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let w = self.writer.as_mut().expect("writer used after finish");
        w.write(batch).map_err(|source| SinkError::Write {
            file: self.dest.clone(),
            source,
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer, syncs the file, renames it to the destination (replacing an existing
    /// file) and syncs the directory. Returns the number of rows written. On error the
    /// temporary file is removed and the destination is left as it was.
    pub fn finish(mut self) -> Result<u64, SinkError> {
        let w = self.writer.take().expect("writer finished twice");
        let done = self.commit(w);
        if done.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        done.map(|()| self.rows)
    }

    fn commit(&self, mut w: ArrowWriter<File>) -> Result<(), SinkError> {
        let commit = |source| SinkError::Commit {
            file: self.dest.clone(),
            tmp: self.tmp.clone(),
            source,
        };
        w.finish().map_err(|source| SinkError::Write {
            file: self.dest.clone(),
            source,
        })?;
        w.inner().sync_all().map_err(commit)?;
        drop(w);
        std::fs::rename(&self.tmp, &self.dest).map_err(commit)?;
        sync_dir(&self.dest);
        Ok(())
    }

    /// The schema every batch must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path written until `finish`.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for AtomicParquetWriter {
    fn drop(&mut self) {
        // Close the file before removing it (required on Windows).
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Makes the rename durable. Best effort: the file is complete and in place either way, and
/// some file systems refuse to sync a directory.
fn sync_dir(dest: &Path) {
    #[cfg(unix)]
    {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = dest;
}
