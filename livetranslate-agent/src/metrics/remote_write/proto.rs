//! The remote write 1.0 body: `prometheus/prompb` messages (hand-written, no protoc), samples
//! grouped by series in time order, protobuf then snappy block compression. The scrape path
//! encodes with [`super::chunk`]; these messages decode (tests, the dry run) and build small
//! requests.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::metrics::{Sample as Scraped, SeriesLabels};

/// A batch of series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series and its samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars (remote write 1.0 field 3).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

/// An exemplar of a series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Its labels (`trace_id`, …).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A label pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Groups samples by series (labels sorted by name) with each series' samples in time order.
pub fn build_request(samples: &[Scraped]) -> WriteRequest {
    let mut series: BTreeMap<&SeriesLabels, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        series.entry(&s.labels).or_default().push(Sample {
            value: s.value,
            timestamp: s.timestamp_ms,
        });
    }
    let timeseries = series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|s| s.timestamp);
            TimeSeries {
                labels: labels
                    .pairs()
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples,
                exemplars: Vec::new(),
            }
        })
        .collect();
    WriteRequest { timeseries }
}

/// Serializes and snappy-compresses (block format) a request body.
pub fn encode_body(req: &WriteRequest) -> Result<Bytes, snap::Error> {
    let raw = prost::Message::encode_to_vec(req);
    Ok(Bytes::from(snap::raw::Encoder::new().compress_vec(&raw)?))
}

/// Decodes a body produced by [`encode_body`] (used by tests and test receivers).
pub fn decode_body(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| e.to_string())?;
    <WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stale_nan;

    fn labels(pairs: &[(&str, &str)]) -> SeriesLabels {
        SeriesLabels::from_map(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn request_groups_sorts_and_round_trips() {
        let a = labels(&[("__name__", "a"), ("job", "j"), ("Z", "z")]);
        let b = labels(&[("__name__", "b")]);
        let samples = vec![
            Scraped {
                labels: a.clone(),
                value: 2.0,
                timestamp_ms: 20,
            },
            Scraped {
                labels: b.clone(),
                value: stale_nan(),
                timestamp_ms: 15,
            },
            Scraped {
                labels: a.clone(),
                value: 1.0,
                timestamp_ms: 10,
            },
        ];
        let req = build_request(&samples);
        assert_eq!(req.timeseries.len(), 2);
        let ts_a = &req.timeseries[0];
        let names: Vec<&str> = ts_a.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Z", "__name__", "job"]);
        let times: Vec<i64> = ts_a.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [10, 20]);
        let body = match encode_body(&req) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let back = match decode_body(&body) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(back.timeseries.len(), 2);
        assert_eq!(
            back.timeseries[1].samples[0].value.to_bits(),
            crate::metrics::STALE_NAN_BITS,
            "the staleness bit pattern survives the wire"
        );
    }

    #[test]
    fn snappy_is_the_block_format() {
        let body = match encode_body(&WriteRequest::default()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        // Block format: a varint length then the data; empty input encodes as one zero byte.
        assert_eq!(&body[..], &[0]);
    }
}
