//! Loki's push body, read with a protobuf wire reader of its own (not the encoders it checks,
//! so a field-number or framing mistake in them shows): snappy block format, then
//! `logproto.PushRequest` { streams = 1: StreamAdapter { labels = 1, entries = 2:
//! EntryAdapter { timestamp = 1: Timestamp { seconds = 1, nanos = 2 }, line = 2 } } }.

use std::sync::Arc;

/// One received entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Received {
    /// The stream's label set as sent (`{a="b", c="d"}`).
    pub labels: Arc<str>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line.
    pub line: Arc<str>,
    /// The tenant it was pushed for (`X-Scope-OrgID`; `None`: none sent). Set by the
    /// stand-in, not by the decoder.
    pub tenant: Option<Arc<str>>,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One protobuf field: number, wire type, payload (length-delimited) and value (varint).
type Field<'a> = (u64, u8, &'a [u8], u64);

/// The fields of a protobuf message.
fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => {
                let v = varint(buf, &mut pos)?;
                out.push((field, 0, &buf[0..0], v));
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((field, 2, buf.get(pos..end)?, 0));
                pos = end;
            }
            1 => pos = pos.checked_add(8).filter(|p| *p <= buf.len())?,
            5 => pos = pos.checked_add(4).filter(|p| *p <= buf.len())?,
            _ => return None,
        }
    }
    Some(out)
}

/// Decodes a push body (what Loki's distributor does with `application/x-protobuf`).
///
/// ```
/// use livetranslate_test_support::loki::decode_push;
/// assert!(decode_push(b"garbage").is_err());
/// // An empty PushRequest: snappy of zero bytes.
/// assert_eq!(decode_push(&[0]).map(|v| v.len()), Ok(0));
/// ```
pub fn decode_push(body: &[u8]) -> Result<Vec<Received>, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let mut out = Vec::new();
    for (f, w, stream, _) in fields(&raw).ok_or("bad protobuf")? {
        if (f, w) != (1, 2) {
            continue;
        }
        let sf = fields(stream).ok_or("bad stream")?;
        let labels: Arc<str> = sf
            .iter()
            .find(|(f, w, _, _)| (*f, *w) == (1, 2))
            .map(|(_, _, b, _)| String::from_utf8_lossy(b).into_owned())
            .ok_or("stream without labels")?
            .into();
        for (_, _, entry, _) in sf.iter().filter(|(f, w, _, _)| (*f, *w) == (2, 2)) {
            let ef = fields(entry).ok_or("bad entry")?;
            let mut ts = 0i64;
            let mut line: Arc<str> = Arc::from("");
            for (f, w, b, _) in ef {
                match (f, w) {
                    (1, 2) => {
                        let tf = fields(b).ok_or("bad timestamp")?;
                        let secs = tf.iter().find(|t| t.0 == 1).map_or(0, |t| t.3 as i64);
                        let nanos = tf.iter().find(|t| t.0 == 2).map_or(0, |t| t.3 as i64);
                        ts = secs * 1_000_000_000 + nanos;
                    }
                    (2, 2) => {
                        line = Arc::from(std::str::from_utf8(b).map_err(|_| "line not UTF-8")?)
                    }
                    _ => {}
                }
            }
            out.push(Received {
                labels: labels.clone(),
                timestamp_ns: ts,
                line,
                tenant: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-encoded: one stream `{a="b"}` with one entry at 1.000000007 s, line "hi".
    #[test]
    fn reads_a_hand_encoded_request() {
        let ts = [0x08, 0x01, 0x10, 0x07]; // seconds=1, nanos=7
        let mut entry = vec![0x0a, ts.len() as u8];
        entry.extend(ts);
        entry.extend([0x12, 0x02, b'h', b'i']);
        let labels = b"{a=\"b\"}";
        let mut stream = vec![0x0a, labels.len() as u8];
        stream.extend(labels);
        stream.push(0x12);
        stream.push(entry.len() as u8);
        stream.extend(&entry);
        let mut req = vec![0x0a, stream.len() as u8];
        req.extend(&stream);
        let body = snap::raw::Encoder::new()
            .compress_vec(&req)
            .unwrap_or_default();
        let got = decode_push(&body);
        assert_eq!(
            got,
            Ok(vec![Received {
                labels: "{a=\"b\"}".into(),
                timestamp_ns: 1_000_000_007,
                line: "hi".into(),
                tenant: None,
            }])
        );
        assert!(decode_push(
            &snap::raw::Encoder::new()
                .compress_vec(&[0x0a, 0x05, 1])
                .unwrap_or_default()
        )
        .is_err());
    }
}
