//! `deadband produce`: replays a Parquet file into a Kafka topic as JSON records, in file order.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureRecord;

use crate::config::KafkaConfig;
use crate::io::codec::encode_record;
use crate::io::kafka::{self, Deliveries, DeliveryError, KafkaIoError};
use crate::io::parquet::{ParquetSource, SourceError, SourceOptions};
use crate::record::RecordKind;

/// What to replay, where, and how fast.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub input: PathBuf,
    pub topic: String,
    pub brokers: String,
    /// Records per second; `None` = as fast as the broker takes them.
    pub rate: Option<f64>,
    /// The record kind; `None` = bars if the file has bar columns, else measurements.
    pub record: Option<RecordKind>,
    /// librdkafka properties (`[kafka.properties]` of a config, or empty).
    pub kafka: KafkaConfig,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("--rate must be at least 0.001 records per second, got {0}")]
    BadRate(f64),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Kafka(#[from] KafkaIoError),
    #[error("delivery to {topic} failed after {delivered} records: {problem}")]
    Delivery {
        topic: String,
        delivered: u64,
        problem: String,
    },
}

impl ProduceError {
    /// True when the user must fix an argument or the input file (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ProduceError::BadRate(_) | ProduceError::Source(_) => true,
            ProduceError::Kafka(k) => k.is_config(),
            ProduceError::Delivery { .. } => false,
        }
    }
}

/// The slowest `--rate` accepted (one record every ~17 minutes); slower ones would overflow the
/// schedule's clock arithmetic long before they were useful.
const MIN_RATE: f64 = 1e-3;

/// Deliveries awaited at most this far behind the newest send: bounds memory.
const MAX_IN_FLIGHT: usize = 20_000;

/// Replays the file and returns the number of records delivered (all delivery reports are
/// awaited). Message key = record key; records are sent in file order, so each key's records
/// keep their order within its partition.
pub fn run(opts: &ProduceOptions) -> Result<u64, ProduceError> {
    if let Some(r) = opts.rate {
        if !(r.is_finite() && r >= MIN_RATE) {
            return Err(ProduceError::BadRate(r));
        }
    }
    let path = opts.input.to_string_lossy().into_owned();
    let source_opts = SourceOptions::default();
    let mut source = match opts.record {
        Some(k) => ParquetSource::open(&path, k, source_opts)?,
        None => ParquetSource::open(&path, RecordKind::Bar, source_opts).or_else(|bar_err| {
            ParquetSource::open(&path, RecordKind::Measurement, source_opts).map_err(|_| bar_err)
        })?,
    };
    let base = kafka::client_config(&opts.brokers, &opts.kafka)?;
    let producer = kafka::producer(&base)?;
    let mut deliveries = Deliveries::default();
    let mut buf = Vec::with_capacity(256);
    let mut sent = 0u64;
    let start = Instant::now();
    let fail = |delivered: u64, e: DeliveryError| ProduceError::Delivery {
        topic: opts.topic.clone(),
        delivered,
        problem: e.problem,
    };
    while let Some(rec) = source.next_record()? {
        encode_record(&rec, &mut buf);
        let record = FutureRecord::to(&opts.topic)
            .key(rec.key.as_bytes())
            .payload(buf.as_slice());
        deliveries
            .send(&producer, record, "input")
            .map_err(|e| fail(deliveries.delivered(), e))?;
        sent += 1;
        deliveries
            .wait_until(MAX_IN_FLIGHT)
            .map_err(|e| fail(deliveries.delivered(), e))?;
        if let Some(rate) = opts.rate {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            let now = start.elapsed();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
    deliveries
        .wait_all()
        .map_err(|e| fail(deliveries.delivered(), e))?;
    Ok(deliveries.delivered())
}
