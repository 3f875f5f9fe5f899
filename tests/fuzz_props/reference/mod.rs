//! Reference readers of a request, written from the RFCs and from the app
//! parsers they model (cited per function), independently of jwtgate's
//! code: what jwtgate decides on is compared with what these read.

pub mod cookie;
pub mod path;
pub mod query;

/// ASCII percent-decoding of every `%XX` (RFC 3986 §2.1), once; a `%` not
/// followed by two hex digits stays as written, as most servers leave it.
pub fn percent_decode_all(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_escape_is_decoded_once() {
        assert_eq!(super::percent_decode_all(b"/%2e%2E/%252e/%zz/%4"), b"/../%2e/%zz/%4");
        assert_eq!(super::percent_decode_all(b"%41"), b"A");
    }
}
