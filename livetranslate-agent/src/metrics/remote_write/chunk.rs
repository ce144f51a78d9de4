//! Samples encoded once, at scrape time, into the remote write 1.0 wire format: a chunk is a
//! snappy-compressed `WriteRequest` of up to a few thousand samples with a small header, and
//! it is what the write-ahead log (or the memory queue) stores and the sender sends.
//!
//! ```text
//! chunk = magic 0xC7 | version 1 | samples: u32 LE | exemplars: u32 LE | snappy(WriteRequest)
//! ```
//!
//! Concatenated `WriteRequest`s are one `WriteRequest` (protobuf repeats fields by
//! appending), so several chunks go out as one request by decompressing, appending and
//! compressing again; one chunk goes out as it is.

use bytes::Bytes;

use super::proto::WriteRequest;

const MAGIC: u8 = 0xC7;
const VERSION: u8 = 1;
/// Bytes before the snappy block.
pub const HEADER_LEN: usize = 10;

/// Default bound on the samples of one chunk.
pub const DEFAULT_MAX_SAMPLES: usize = 2000;
/// Default bound on the uncompressed protobuf bytes of one chunk.
pub const DEFAULT_MAX_RAW_BYTES: usize = 1 << 20;

/// One encoded chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Samples in it (staleness markers included).
    pub samples: u32,
    /// Exemplars in it.
    pub exemplars: u32,
    /// Header and snappy block: the WAL record, as stored.
    pub bytes: Bytes,
}

/// A chunk that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged remote-write chunk: {0}")]
pub struct ChunkError(pub String);

impl Chunk {
    /// Reads the header of a stored chunk.
    ///
    /// ```
    /// use livetranslate_agent::metrics::remote_write::chunk::{Chunk, ChunkEncoder};
    /// let mut e = ChunkEncoder::new(100, 1 << 20);
    /// e.push_sample(&[("__name__", "up")], 1.0, 5, None);
    /// let chunks = e.finish();
    /// let back = Chunk::from_stored(chunks[0].bytes.clone()).unwrap();
    /// assert_eq!((back.samples, back.exemplars), (1, 0));
    /// ```
    pub fn from_stored(bytes: Bytes) -> Result<Chunk, ChunkError> {
        if bytes.len() < HEADER_LEN || bytes[0] != MAGIC {
            return Err(ChunkError("not a chunk".into()));
        }
        if bytes[1] != VERSION {
            return Err(ChunkError(format!("unknown chunk version {}", bytes[1])));
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(w)
        };
        Ok(Chunk {
            samples: word(2),
            exemplars: word(6),
            bytes,
        })
    }

    /// The snappy-compressed `WriteRequest` (a remote-write request body).
    pub fn body(&self) -> Bytes {
        self.bytes.slice(HEADER_LEN..)
    }

    /// The uncompressed protobuf.
    pub fn raw(&self) -> Result<Vec<u8>, ChunkError> {
        snap::raw::Decoder::new()
            .decompress_vec(&self.bytes[HEADER_LEN..])
            .map_err(|e| ChunkError(e.to_string()))
    }

    /// The decoded request.
    pub fn decode(&self) -> Result<WriteRequest, ChunkError> {
        let raw = self.raw()?;
        <WriteRequest as prost::Message>::decode(raw.as_slice())
            .map_err(|e| ChunkError(e.to_string()))
    }
}

/// The request body of several chunks: the one chunk's own block, or the blocks of all of
/// them decompressed, appended and compressed again.
///
/// ```
/// use livetranslate_agent::metrics::remote_write::chunk::{request_body, ChunkEncoder};
/// use livetranslate_agent::metrics::remote_write::decode_body;
/// let mut e = ChunkEncoder::new(1, 1 << 20);
/// e.push_sample(&[("__name__", "a")], 1.0, 5, None);
/// e.push_sample(&[("__name__", "b")], 2.0, 5, None);
/// let chunks = e.finish();
/// assert_eq!(chunks.len(), 2);
/// let body = request_body(&chunks).unwrap();
/// assert_eq!(decode_body(&body).unwrap().timeseries.len(), 2);
/// ```
pub fn request_body(chunks: &[Chunk]) -> Result<Bytes, ChunkError> {
    if let [one] = chunks {
        return Ok(one.body());
    }
    let mut raw = Vec::new();
    let mut dec = snap::raw::Decoder::new();
    for c in chunks {
        let part = dec
            .decompress_vec(&c.bytes[HEADER_LEN..])
            .map_err(|e| ChunkError(e.to_string()))?;
        raw.extend_from_slice(&part);
    }
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map(Bytes::from)
        .map_err(|e| ChunkError(e.to_string()))
}

/// Protobuf wire helpers (hand-written: the encoder writes straight into one buffer).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `labels` (sorted by name, the caller's duty) as the repeated `Label` field 1 of a
/// `TimeSeries` or `Exemplar`: the bytes [`ChunkEncoder::push_encoded`] takes.
///
/// ```
/// use livetranslate_agent::metrics::remote_write::chunk::encode_labels;
/// let mut out = Vec::new();
/// encode_labels(&mut out, [("__name__", "up")].into_iter());
/// assert_eq!(out, b"\x0a\x0e\x0a\x08__name__\x12\x02up");
/// ```
pub fn encode_labels<'a>(out: &mut Vec<u8>, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    for (name, value) in labels {
        let inner = 1
            + varint_len(name.len() as u64)
            + name.len()
            + 1
            + varint_len(value.len() as u64)
            + value.len();
        put_key(out, 1, 2);
        put_varint(out, inner as u64);
        put_bytes_field(out, 1, name.as_bytes());
        put_bytes_field(out, 2, value.as_bytes());
    }
}

/// An exemplar to encode: its labels as [`encode_labels`] wrote them, value and timestamp.
#[derive(Debug, Clone, Copy)]
pub struct EncodedExemplar<'a> {
    /// Field-1 `Label` messages.
    pub labels: &'a [u8],
    /// Value.
    pub value: f64,
    /// Milliseconds.
    pub timestamp_ms: i64,
}

/// Encodes samples into chunks of at most `max_samples` samples and about `max_raw_bytes`
/// uncompressed bytes.
#[derive(Debug)]
pub struct ChunkEncoder {
    raw: Vec<u8>,
    samples: u32,
    exemplars: u32,
    max_samples: usize,
    max_raw_bytes: usize,
    done: Vec<Chunk>,
    done_bytes: usize,
    scratch: Vec<u8>,
    labels: Vec<u8>,
}

impl ChunkEncoder {
    /// An encoder cutting chunks at `max_samples` samples or `max_raw_bytes` bytes.
    pub fn new(max_samples: usize, max_raw_bytes: usize) -> ChunkEncoder {
        ChunkEncoder {
            raw: Vec::new(),
            samples: 0,
            exemplars: 0,
            max_samples: max_samples.max(1),
            max_raw_bytes: max_raw_bytes.max(1),
            done: Vec::new(),
            done_bytes: 0,
            scratch: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Adds one sample of the series `labels` (sorted by name).
    pub fn push_sample(
        &mut self,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: i64,
        exemplar: Option<EncodedExemplar<'_>>,
    ) {
        let mut l = std::mem::take(&mut self.labels);
        l.clear();
        encode_labels(&mut l, labels.iter().copied());
        self.push_encoded(&l, Some((value, timestamp_ms)), exemplar);
        self.labels = l;
    }

    /// Adds one `TimeSeries` with already encoded labels: a sample, an exemplar, or both.
    pub fn push_encoded(
        &mut self,
        labels: &[u8],
        sample: Option<(f64, i64)>,
        exemplar: Option<EncodedExemplar<'_>>,
    ) {
        let ts = &mut self.scratch;
        ts.clear();
        ts.extend_from_slice(labels);
        if let Some((value, timestamp_ms)) = sample {
            // Sample { double value = 1; int64 timestamp = 2; }
            let inner = 9 + 1 + varint_len(timestamp_ms as u64);
            put_key(ts, 2, 2);
            put_varint(ts, inner as u64);
            put_key(ts, 1, 1);
            ts.extend_from_slice(&value.to_le_bytes());
            put_key(ts, 2, 0);
            put_varint(ts, timestamp_ms as u64);
        }
        if let Some(e) = exemplar {
            // Exemplar { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }
            let inner = e.labels.len() + 9 + 1 + varint_len(e.timestamp_ms as u64);
            put_key(ts, 3, 2);
            put_varint(ts, inner as u64);
            ts.extend_from_slice(e.labels);
            put_key(ts, 2, 1);
            ts.extend_from_slice(&e.value.to_le_bytes());
            put_key(ts, 3, 0);
            put_varint(ts, e.timestamp_ms as u64);
        }
        put_bytes_field(&mut self.raw, 1, &self.scratch);
        if sample.is_some() {
            self.samples += 1;
        }
        if exemplar.is_some() {
            self.exemplars += 1;
        }
        if self.samples as usize >= self.max_samples || self.raw.len() >= self.max_raw_bytes {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(HEADER_LEN + snap::raw::max_compress_len(self.raw.len()));
        out.push(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.samples.to_le_bytes());
        out.extend_from_slice(&self.exemplars.to_le_bytes());
        out.resize(HEADER_LEN + snap::raw::max_compress_len(self.raw.len()), 0);
        match snap::raw::Encoder::new().compress(&self.raw, &mut out[HEADER_LEN..]) {
            Ok(n) => {
                out.truncate(HEADER_LEN + n);
                out.shrink_to_fit();
                self.done_bytes += out.len();
                self.done.push(Chunk {
                    samples: self.samples,
                    exemplars: self.exemplars,
                    bytes: Bytes::from(out),
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot compress remote-write samples; dropped"),
        }
        self.raw.clear();
        if self.raw.capacity() > 2 * self.max_raw_bytes {
            self.raw.shrink_to(self.max_raw_bytes);
        }
        self.samples = 0;
        self.exemplars = 0;
    }

    /// Samples encoded so far.
    pub fn samples(&self) -> usize {
        self.done.iter().map(|c| c.samples as usize).sum::<usize>() + self.samples as usize
    }

    /// Compressed bytes of the chunks finished so far.
    pub fn finished_bytes(&self) -> usize {
        self.done_bytes
    }

    /// The chunks, the last one cut where it is.
    pub fn finish(mut self) -> Vec<Chunk> {
        self.cut();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::remote_write::proto;

    #[test]
    fn the_hand_encoder_agrees_with_prost() {
        let mut e = ChunkEncoder::new(1000, 1 << 20);
        let mut ex_labels = Vec::new();
        encode_labels(&mut ex_labels, [("trace_id", "abc")].into_iter());
        e.push_sample(
            &[("__name__", "req_total"), ("job", "j")],
            -2.5,
            -7,
            Some(EncodedExemplar {
                labels: &ex_labels,
                value: 0.25,
                timestamp_ms: 1_700_000_000_123,
            }),
        );
        e.push_sample(
            &[("__name__", "up")],
            f64::from_bits(crate::metrics::STALE_NAN_BITS),
            9,
            None,
        );
        let mut labels = Vec::new();
        encode_labels(&mut labels, [("__name__", "x")].into_iter());
        e.push_encoded(
            &labels,
            None,
            Some(EncodedExemplar {
                labels: &ex_labels,
                value: 1.0,
                timestamp_ms: 3,
            }),
        );
        let chunks = e.finish();
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].samples, chunks[0].exemplars), (2, 2));
        let req = match chunks[0].decode() {
            Ok(r) => r,
            Err(err) => panic!("{err}"),
        };
        let label = |n: &str, v: &str| proto::Label {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            req.timeseries[0],
            proto::TimeSeries {
                labels: vec![label("__name__", "req_total"), label("job", "j")],
                samples: vec![proto::Sample {
                    value: -2.5,
                    timestamp: -7
                }],
                exemplars: vec![proto::Exemplar {
                    labels: vec![label("trace_id", "abc")],
                    value: 0.25,
                    timestamp: 1_700_000_000_123,
                }],
            }
        );
        assert_eq!(
            req.timeseries[1].samples[0].value.to_bits(),
            crate::metrics::STALE_NAN_BITS
        );
        assert!(req.timeseries[2].samples.is_empty());
        assert_eq!(req.timeseries[2].exemplars.len(), 1);
    }

    #[test]
    fn chunks_are_cut_by_samples_and_bytes_and_concatenate() {
        let mut e = ChunkEncoder::new(3, 1 << 20);
        for i in 0..7 {
            e.push_sample(&[("__name__", "m"), ("i", &i.to_string())], 1.0, i, None);
        }
        assert_eq!(e.samples(), 7);
        let chunks = e.finish();
        let counts: Vec<u32> = chunks.iter().map(|c| c.samples).collect();
        assert_eq!(counts, [3, 3, 1]);
        let body = match request_body(&chunks) {
            Ok(b) => b,
            Err(err) => panic!("{err}"),
        };
        let req = match super::super::decode_body(&body) {
            Ok(r) => r,
            Err(err) => panic!("{err}"),
        };
        let times: Vec<i64> = req
            .timeseries
            .iter()
            .map(|t| t.samples[0].timestamp)
            .collect();
        assert_eq!(times, [0, 1, 2, 3, 4, 5, 6]);
        let mut big = ChunkEncoder::new(1000, 100);
        let long = "v".repeat(80);
        for _ in 0..3 {
            big.push_sample(&[("__name__", "m"), ("l", &long)], 1.0, 0, None);
        }
        assert_eq!(big.finish().len(), 3);
        assert!(Chunk::from_stored(Bytes::from_static(b"junk")).is_err());
    }
}
