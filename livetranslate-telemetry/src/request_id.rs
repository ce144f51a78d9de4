//! `x-request-id`: taken from the request when it is well-formed, generated otherwise, and
//! available to handlers as the [`RequestId`] extension.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::HeaderValue;

/// The header name.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of the request being handled, as a request extension.
///
/// ```
/// use axum::{routing::get, Extension, Router};
/// use livetranslate_telemetry::RequestId;
/// async fn handler(Extension(id): Extension<RequestId>) -> String {
///     format!("request {}", id.as_str())
/// }
/// let app: Router = Router::new().route("/", get(handler));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub(crate) HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ids made of visible ASCII are ever constructed.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value (to forward on outbound calls).
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Accepts an incoming id if it is 1 to 128 visible ASCII characters.
    pub(crate) fn from_incoming(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        (!bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| (0x21..=0x7e).contains(b)))
            .then(|| RequestId(value.clone()))
    }

    /// A new random id: 32 lowercase hex digits (128 bits).
    pub fn generate() -> Self {
        let mut buf = [0u8; 32];
        write_hex(&mut buf[..16], next_random());
        write_hex(&mut buf[16..], next_random());
        // Hex digits are always a valid header value.
        RequestId(HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0")))
    }
}

/// Two lowercase hex digits for every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Writes `n` as 16 lowercase hex digits into `out[..16]` (for request and trace ids).
#[inline]
pub(crate) fn write_hex(out: &mut [u8], n: u64) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(n.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        // Seeded from the OS-random keys of the standard library's hasher.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish()
    });
}

/// wyrand: a fast, well-distributed 64-bit generator (not for secrets).
pub(crate) fn next_random() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| RequestId::generate().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn incoming_ids_are_validated() {
        assert!(RequestId::from_incoming(&HeaderValue::from_static("abc-123")).is_some());
        assert!(RequestId::from_incoming(&HeaderValue::from_static("has space")).is_none());
        assert!(RequestId::from_incoming(&HeaderValue::from_static("")).is_none());
        let long = "a".repeat(129);
        assert!(RequestId::from_incoming(&HeaderValue::from_str(&long).expect("hv")).is_none());
    }
}
