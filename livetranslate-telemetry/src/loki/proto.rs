//! Loki's push API messages (`logproto.PushRequest`), written by hand with prost derives so
//! the build needs no protoc. Field numbers follow Loki's `pkg/push/push.proto`.

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// From nanoseconds since the Unix epoch.
    pub fn from_nanos(ns: i64) -> Self {
        Timestamp {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as i32,
        }
    }

    /// To nanoseconds since the Unix epoch.
    pub fn to_nanos(self) -> i64 {
        self.seconds * 1_000_000_000 + i64::from(self.nanos)
    }
}

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one label set and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The label set in Prometheus selector syntax: `{a="b", c="d"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Entries, ordered by time.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Hash of the labels (unused by the push path).
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`: one log line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When the line was written.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata (not used by the agent).
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Encodes a push request as Loki expects it on the wire: protobuf, then snappy block format.
pub fn encode(req: &PushRequest) -> Result<Vec<u8>, snap::Error> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new().compress_vec(&raw)
}

/// Decodes a snappy-compressed protobuf push request (what Loki's distributor does).
pub fn decode(body: &[u8]) -> Result<PushRequest, DecodeError> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(DecodeError::Snappy)?;
    <PushRequest as prost::Message>::decode(raw.as_slice()).map_err(DecodeError::Protobuf)
}

/// A push body that is not valid snappy or protobuf.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Snappy block decompression failed.
    #[error("snappy: {0}")]
    Snappy(snap::Error),
    /// Protobuf decoding failed.
    #[error("protobuf: {0}")]
    Protobuf(prost::DecodeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: "{job=\"x\"}".into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp::from_nanos(1_700_000_000_123_456_789)),
                    line: "hello ✓".into(),
                    structured_metadata: vec![],
                }],
                hash: 0,
            }],
        };
        let body = encode(&req).expect("encode");
        assert_eq!(decode(&body).expect("decode"), req);
        assert!(decode(b"not snappy").is_err());
    }

    #[test]
    fn negative_timestamps_split_correctly() {
        let t = Timestamp::from_nanos(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_999_999));
        assert_eq!(t.to_nanos(), -1);
    }
}
