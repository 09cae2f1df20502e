//! The dead-letter copy of a bad record: the original key and payload unchanged when they fit
//! in one Kafka message, a bounded prefix with the original size and a BLAKE3 hash when they do
//! not — so one oversized bad record can never fail its own dead-letter produce and block its
//! partition in a crash loop.

use rdkafka::message::{Header, OwnedHeaders};

/// librdkafka's default `message.max.bytes` (the producer refuses larger messages).
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept for the headers and the record framing when deciding whether a copy fits.
const HEADROOM: usize = 16 * 1024;
/// What is kept of a payload that does not fit: enough to see what it was.
pub const KEPT_PAYLOAD: usize = 64 * 1024;
/// What is kept of a key that does not fit.
pub const KEPT_KEY: usize = 1024;
/// The longest `deadband-error` reason: a decode error may quote the bad field.
pub const MAX_REASON: usize = 1024;

/// The bytes of one dead letter and its headers.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: OwnedHeaders,
    /// Whether the key or the payload was cut.
    pub truncated: bool,
}

/// Where the bad record came from, for the `deadband-source` header.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Builds the dead letter of `key`/`payload` for a producer whose `message.max.bytes` is
/// `max_bytes`. Headers: `deadband-error` (the reason, cut to [`MAX_REASON`] bytes on a char
/// boundary), `deadband-source` (`topic/partition/offset`) and, when the copy was cut,
/// `deadband-truncated` = `true`, `deadband-original-key-bytes`,
/// `deadband-original-payload-bytes` and `deadband-payload-blake3` (hex of the whole payload).
pub fn dead_letter<'a>(
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    reason: &str,
    origin: &Origin<'_>,
    max_bytes: usize,
) -> DeadLetter<'a> {
    let source = format!("{}/{}/{}", origin.topic, origin.partition, origin.offset);
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: "deadband-error",
            value: Some(cut_str(reason, MAX_REASON)),
        })
        .insert(Header {
            key: "deadband-source",
            value: Some(&source),
        });
    let (klen, plen) = (key.map_or(0, <[u8]>::len), payload.map_or(0, <[u8]>::len));
    let budget = max_bytes.saturating_sub(HEADROOM);
    if klen + plen <= budget {
        return DeadLetter {
            key,
            payload,
            headers,
            truncated: false,
        };
    }
    let keep_key = KEPT_KEY.min(budget / 2);
    let keep_payload = KEPT_PAYLOAD.min(budget.saturating_sub(keep_key.min(klen)));
    let hash = blake3::hash(payload.unwrap_or_default()).to_hex();
    for (name, value) in [
        ("deadband-truncated", "true".to_string()),
        ("deadband-original-key-bytes", klen.to_string()),
        ("deadband-original-payload-bytes", plen.to_string()),
        ("deadband-payload-blake3", hash.to_string()),
    ] {
        headers = headers.insert(Header {
            key: name,
            value: Some(&value),
        });
    }
    DeadLetter {
        key: key.map(|k| &k[..k.len().min(keep_key)]),
        payload: payload.map(|p| &p[..p.len().min(keep_payload)]),
        headers,
        truncated: true,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn cut_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The producer's `message.max.bytes` from the client configuration, or librdkafka's default.
pub fn message_max_bytes(c: &rdkafka::config::ClientConfig) -> usize {
    c.get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    const AT: Origin<'static> = Origin {
        topic: "in",
        partition: 3,
        offset: 42,
    };

    fn header<'h>(h: &'h OwnedHeaders, name: &str) -> Option<&'h [u8]> {
        h.iter().find(|x| x.key == name).and_then(|x| x.value)
    }

    #[test]
    fn a_copy_that_fits_is_unchanged() {
        let p = vec![b'x'; 100_000];
        let d = dead_letter(Some(b"k"), Some(&p), "malformed_json: eof", &AT, 1_000_000);
        assert!(!d.truncated);
        assert_eq!(d.payload, Some(p.as_slice()));
        assert_eq!(d.key, Some(&b"k"[..]));
        assert_eq!(header(&d.headers, "deadband-source"), Some(&b"in/3/42"[..]));
        assert_eq!(header(&d.headers, "deadband-truncated"), None);
    }

    #[test]
    fn an_oversized_copy_is_cut_and_says_what_it_was() {
        let p: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let k = vec![b'k'; 300_000];
        let d = dead_letter(Some(&k), Some(&p), "bad", &AT, 1_000_000);
        assert!(d.truncated);
        let (kl, pl) = (d.key.unwrap().len(), d.payload.unwrap().len());
        assert_eq!((kl, pl), (KEPT_KEY, KEPT_PAYLOAD));
        assert_eq!(d.payload.unwrap(), &p[..KEPT_PAYLOAD]);
        assert!(kl + pl + HEADROOM <= 1_000_000);
        assert_eq!(
            header(&d.headers, "deadband-original-payload-bytes"),
            Some(&b"5000000"[..])
        );
        assert_eq!(
            header(&d.headers, "deadband-original-key-bytes"),
            Some(&b"300000"[..])
        );
        // The hash is of the whole payload: a second method (hashing in pieces) agrees.
        let mut h = blake3::Hasher::new();
        for chunk in p.chunks(4096) {
            h.update(chunk);
        }
        let want = h.finalize().to_hex();
        assert_eq!(
            header(&d.headers, "deadband-payload-blake3"),
            Some(want.as_bytes())
        );
    }

    #[test]
    fn the_sum_of_key_and_payload_decides_and_the_copy_always_fits() {
        for max in [20_000usize, 100_000, 1_000_000, 10_000_000] {
            for (k, p) in [
                (10usize, 0usize),
                (0, 2_000_000),
                (600_000, 600_000),
                (5, 999_000),
            ] {
                let (kb, pb) = (vec![1u8; k], vec![2u8; p]);
                let d = dead_letter(Some(&kb), Some(&pb), "r", &AT, max);
                let size = d.key.unwrap().len() + d.payload.unwrap().len();
                assert!(
                    size + HEADROOM <= max,
                    "max {max}, key {k}, payload {p}: {size}"
                );
                assert_eq!(d.truncated, k + p + HEADROOM > max);
            }
        }
    }

    #[test]
    fn a_long_reason_is_cut_on_a_char_boundary() {
        let reason = "é".repeat(5_000);
        let d = dead_letter(None, None, &reason, &AT, 1_000_000);
        let got = header(&d.headers, "deadband-error").unwrap();
        let got = std::str::from_utf8(got).expect("valid UTF-8");
        assert!(got.len() <= MAX_REASON && got.len() >= MAX_REASON - 1);
        assert!(reason.starts_with(got));
    }
}
