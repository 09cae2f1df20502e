//! Kafka clients: librdkafka configuration (with `${ENV}` expansion), producer and consumer
//! construction, the changelog restore reader; and, in the files beside this one, Kafka as flow
//! parts — a partition source, the events/DLQ sink and the changelog checkpoint.

mod deliveries;
mod dlq;
mod flow;

pub use deliveries::{Deliveries, DeliveryError};
pub use dlq::{dead_letter, message_max_bytes, DeadLetter, Origin};
pub use flow::{ChangelogCheckpoint, Fence, KafkaSink, Messages, PartitionSource, Work};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{expand_env, KafkaConfig};

/// A Kafka client problem. Config problems (`Property`, `Env`) are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum KafkaIoError {
    #[error("[kafka.properties]: {0}")]
    Property(String),
    #[error("[kafka.properties] `{property}` references the environment variable `{var}`, which is not set; export it or write the value directly")]
    Env { property: String, var: String },
    #[error("cannot create the Kafka {what}: {source}")]
    Create {
        what: &'static str,
        source: KafkaError,
    },
    #[error("restoring state from changelog {topic}/{partition}: {problem}")]
    Restore {
        topic: String,
        partition: i32,
        problem: String,
    },
    #[error("Kafka {what}: {source}")]
    Client { what: String, source: KafkaError },
    #[error("{0}")]
    Changelog(String),
}

impl KafkaIoError {
    /// True for errors the user fixes in the configuration (exit code 2).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            KafkaIoError::Property(_) | KafkaIoError::Env { .. } | KafkaIoError::Changelog(_)
        )
    }
}

/// The base client configuration: brokers plus `[kafka.properties]` (expanded), which may
/// override anything deadband sets itself except where noted by the caller.
pub fn client_config(brokers: &str, kafka: &KafkaConfig) -> Result<ClientConfig, KafkaIoError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    let pairs = kafka.property_pairs().map_err(|name| {
        KafkaIoError::Property(format!("`{name}` must be a string, number or boolean"))
    })?;
    for (name, value) in pairs {
        let v = expand_env(&value, |v| std::env::var(v).ok()).map_err(|var| KafkaIoError::Env {
            property: name.clone(),
            var,
        })?;
        c.set(name, v);
    }
    Ok(c)
}

/// The producer used for events, DLQ records and changelog writes: idempotent unless
/// `[kafka.properties]` says `enable.idempotence = false` (a broker or ACL without idempotent
/// writes; retries may then write a record twice — identical, so still at-least-once).
pub fn producer(base: &ClientConfig) -> Result<FutureProducer, KafkaIoError> {
    let mut c = base.clone();
    if c.get("enable.idempotence").is_none() {
        c.set("enable.idempotence", "true");
    }
    if c.get("linger.ms").is_none() {
        c.set("linger.ms", "5");
    }
    c.create().map_err(|source| KafkaIoError::Create {
        what: "producer",
        source,
    })
}

/// The group consumer: cooperative-sticky assignment, manual commits, and no automatic offset
/// store (offsets are committed explicitly at checkpoints).
pub fn group_consumer<C: ConsumerContext + 'static>(
    base: &ClientConfig,
    group: &str,
    context: C,
) -> Result<BaseConsumer<C>, KafkaIoError> {
    let mut c = base.clone();
    c.set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if c.get("auto.offset.reset").is_none() {
        // A new group reads the topic from the start: nothing produced before it started is lost.
        c.set("auto.offset.reset", "earliest");
    }
    c.create_with_context(context)
        .map_err(|source| KafkaIoError::Create {
            what: "consumer",
            source,
        })
}

/// The group-less consumer that reads changelog partitions at restore: created once per daemon
/// and reused by every restore (issue 10: a new client per partition paid 105–155 ms of
/// connecting and metadata before it could even read the watermarks of an empty changelog).
pub fn changelog_reader(base: &ClientConfig) -> Result<BaseConsumer, KafkaIoError> {
    let mut c = base.clone();
    // A group id is set because some librdkafka versions insist on one, but the reader only
    // uses `assign`, so it never joins the group or commits.
    c.set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("group.id", "deadband-restore-unused");
    c.create().map_err(|source| KafkaIoError::Create {
        what: "changelog reader",
        source,
    })
}

/// Reads one changelog partition from the beginning to its high watermark with `reader` (see
/// [`changelog_reader`]; one partition at a time) and returns the last value of each key (a
/// tombstone, i.e. an empty or missing value, removes the key). An empty partition costs one
/// watermark query. The reader is left without an assignment, whatever the outcome.
///
/// The reader lives as long as the daemon and sits idle between restores, so the connection
/// errors librdkafka queued while the broker was away (one per reconnect attempt) are dropped
/// before reading, and a connection error during the read is waited out until `timeout`:
/// librdkafka reconnects on its own, and only the deadline decides that the broker is gone.
pub fn read_changelog(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<HashMap<String, Vec<u8>>, KafkaIoError> {
    let fail = |problem: String| KafkaIoError::Restore {
        topic: topic.to_string(),
        partition,
        problem,
    };
    let deadline = Instant::now() + timeout;
    while reader.poll(Duration::ZERO).is_some() {}
    let (low, high) = reader
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|e| fail(format!("cannot read the watermarks: {e}")))?;
    let mut state = HashMap::new();
    if high <= low {
        return Ok(state);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| fail(e.to_string()))?;
    reader.assign(&tpl).map_err(|e| fail(e.to_string()))?;
    let read = read_assigned(
        reader,
        (topic, partition),
        high,
        (deadline, timeout),
        &mut state,
    );
    let unassigned = reader.unassign();
    read.map_err(fail)?;
    unassigned.map_err(|e| {
        fail(format!(
            "cannot release the partition after reading it: {e}"
        ))
    })?;
    Ok(state)
}

/// Polls the assigned changelog partition until the message before `high`, keeping the last
/// value of each key. Messages of any other partition (left from an earlier assignment) are
/// ignored.
fn read_assigned(
    reader: &BaseConsumer,
    (topic, partition): (&str, i32),
    high: i64,
    (deadline, timeout): (Instant, Duration),
    state: &mut HashMap<String, Vec<u8>>,
) -> Result<(), String> {
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?} before reaching offset {high}"
            ));
        }
        let m = match reader.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) if is_connection_error(&e) => {
                tracing::debug!(
                    "changelog {topic}/{partition}: {e}; waiting for librdkafka to reconnect"
                );
                continue;
            }
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(m)) => m,
        };
        if m.partition() != partition || m.topic() != topic {
            continue;
        }
        if let Some(k) = m.key() {
            let k = String::from_utf8_lossy(k).into_owned();
            match m.payload() {
                Some(v) if !v.is_empty() => {
                    state.insert(k, v.to_vec());
                }
                _ => {
                    state.remove(&k);
                }
            }
        }
        if m.offset() + 1 >= high {
            return Ok(());
        }
    }
}

/// A client-wide connection problem that librdkafka recovers from by itself (it keeps
/// reconnecting), as opposed to a problem with the partition being read.
fn is_connection_error(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
        )
    )
}

/// Partitions of `topic` in the cluster's metadata; `None` when the topic does not exist.
fn partition_count(
    client: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, KafkaIoError> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| KafkaIoError::Client {
            what: format!("metadata of {topic}"),
            source,
        })?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// Makes sure the changelog can hold every input partition's state, as Kafka Streams does with
/// its internal topics: a missing changelog is created compacted with as many partitions as the
/// largest input topic; one with fewer partitions is refused with the fix (a partition's state
/// is written to the changelog partition of the same number). Compaction of an existing topic
/// is not checked (not every broker answers DescribeConfigs); the README says to set it.
pub fn ensure_changelog(
    base: &ClientConfig,
    changelog: &str,
    inputs: &[String],
    timeout: Duration,
) -> Result<(), KafkaIoError> {
    let client: BaseConsumer = base.create().map_err(|source| KafkaIoError::Create {
        what: "metadata client",
        source,
    })?;
    let mut needed = 0;
    for t in inputs {
        needed = needed.max(partition_count(&client, t, timeout)?.unwrap_or(0));
    }
    match partition_count(&client, changelog, timeout)? {
        Some(have) if have >= needed => Ok(()),
        Some(have) => Err(KafkaIoError::Changelog(format!(
            "changelog topic `{changelog}` has {have} partitions but the input has {needed}; \
             recreate it with at least {needed} partitions (cleanup.policy=compact) or name \
             another one in [output] changelog_topic"
        ))),
        None => {
            let admin: AdminClient<DefaultClientContext> =
                base.create().map_err(|source| KafkaIoError::Create {
                    what: "admin client",
                    source,
                })?;
            let partitions = i32::try_from(needed.max(1)).unwrap_or(i32::MAX);
            let topic = NewTopic::new(changelog, partitions, TopicReplication::Fixed(-1))
                .set("cleanup.policy", "compact");
            let opts = AdminOptions::new().operation_timeout(Some(timeout));
            let res = futures::executor::block_on(admin.create_topics([&topic], &opts)).map_err(
                |source| KafkaIoError::Client {
                    what: format!("creating changelog topic {changelog}"),
                    source,
                },
            )?;
            for r in res {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        return Err(KafkaIoError::Changelog(format!(
                            "cannot create changelog topic `{name}`: {code}; create it \
                             (cleanup.policy=compact, {partitions} partitions) or grant the \
                             daemon's user CreateTopics"
                        )))
                    }
                }
            }
            tracing::info!(topic = changelog, partitions, "created the changelog topic");
            Ok(())
        }
    }
}

/// Enqueues a send, waiting while the producer's queue is full: this is where the daemon's
/// backpressure comes from (a full queue blocks the worker, whose full channel blocks the
/// poller, which stops fetching).
pub fn send_with_backpressure(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                r,
            )) => {
                record = r;
                // The queue drains as deliveries complete; retry shortly.
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka is built with OpenSSL (rdkafka's `ssl` feature): a SASL_SSL client can be
    /// created. Without the feature, creating it fails with "OpenSSL not available at build
    /// time". No broker is contacted.
    #[test]
    fn a_sasl_ssl_client_can_be_created() {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:1")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", "u")
            .set("sasl.password", "p");
        let created = producer(&c).map(|_| ());
        assert!(created.is_ok(), "{created:?}");
    }
}
