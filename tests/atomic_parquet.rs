//! AtomicParquetWriter: the file appears under its final name only when finished; otherwise, or
//! when finishing fails, no temporary file is left behind.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use deadband::io::parquet::{AtomicParquetWriter, SinkError};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
}

fn batch(v: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(v)) as ArrayRef]).unwrap()
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn finish_renames_a_complete_file_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.parquet");
    std::fs::write(&dest, "old contents").unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    let mut w = AtomicParquetWriter::create(&dest, schema(), props).unwrap();
    assert_eq!(w.tmp_path(), dir.path().join("out.parquet.tmp"));
    w.write(&batch(vec![1, 2, 3])).unwrap();
    w.write(&batch(vec![])).unwrap();
    w.write(&batch(vec![4])).unwrap();
    assert_eq!(w.rows(), 4);
    // Until finished, the destination keeps its old contents.
    assert_eq!(std::fs::read(&dest).unwrap(), b"old contents");
    assert_eq!(w.finish().unwrap(), 4);
    assert_eq!(names(dir.path()), ["out.parquet"]);

    let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&dest).unwrap()).unwrap();
    assert_eq!(r.metadata().num_row_groups(), 2);
    let got: Vec<i64> = r
        .build()
        .unwrap()
        .flat_map(|b| {
            let b = b.unwrap();
            let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            a.values().to_vec()
        })
        .collect();
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn dropped_or_failed_writers_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let props = || WriterProperties::builder().build();
    let dest = dir.path().join("dropped.parquet");
    let tmp = dir.path().join(".dropped.parquet.partial");
    let mut w = AtomicParquetWriter::create_with_tmp(&dest, &tmp, schema(), props()).unwrap();
    w.write(&batch(vec![1])).unwrap();
    assert!(tmp.exists());
    drop(w);
    assert!(names(dir.path()).is_empty());

    // The destination is a directory: the rename fails, the temporary file goes.
    let dest = dir.path().join("a-dir.parquet");
    std::fs::create_dir(&dest).unwrap();
    let mut w = AtomicParquetWriter::create(&dest, schema(), props()).unwrap();
    w.write(&batch(vec![1])).unwrap();
    let err = w.finish().unwrap_err();
    assert!(matches!(err, SinkError::Commit { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("a-dir.parquet") && msg.contains("permissions"),
        "{msg}"
    );
    assert_eq!(names(dir.path()), ["a-dir.parquet"]);

    let err = AtomicParquetWriter::create(&dir.path().join("no/x.parquet"), schema(), props())
        .err()
        .unwrap();
    assert!(matches!(err, SinkError::Create { .. }), "{err:?}");
    assert!(err.to_string().contains("directory exists"), "{err}");
}
