//! `cookie`: Cookie header bytes → `auth::cookie::credential` and
//! `auth::cookie::forward`, read back by the reference parsers of the apps
//! ([`reference::cookie::READERS`]).
//!
//! Input: one flag byte (bits 0–1 pick the credential cookie's name), then
//! `\n`-separated Cookie header values (invalid header values dropped).
//!
//! Properties: no panic; when `credential()` reads `v` (a value that could
//! be a token: base64url and dots), after
//! `forward(KeepVerified)` every reference parser reads `v` or nothing for
//! the name, and jwtgate reads `v` again; after `forward(Remove)` no parser
//! reads anything for the name; `Untouched` leaves one field as it was and
//! joins several into one.

use super::reference;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use jwtgate::auth::cookie::{credential, forward, Credential};

pub const NAMES: [&str; 4] = ["access_token", "at", "Auth", "session.id"];

pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let name = NAMES[usize::from(flags & 3)];
    let mut headers = HeaderMap::new();
    for value in super::fields(rest) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(COOKIE, value);
        }
    }
    let sent: Vec<Vec<u8>> = headers.get_all(COOKIE).iter().map(|v| v.as_bytes().to_vec()).collect();

    let mut untouched = headers.clone();
    forward(&mut untouched, Some(name), Credential::Untouched);
    let after: Vec<&[u8]> = untouched.get_all(COOKIE).iter().map(|v| v.as_bytes()).collect();
    assert!(after.len() <= 1, "Untouched left several Cookie fields");
    if sent.len() == 1 {
        assert_eq!(after, [sent[0].as_slice()], "Untouched changed a single Cookie field");
    }

    let mut removed = headers.clone();
    forward(&mut removed, Some(name), Credential::Remove);
    let app = app_header(&removed);
    for (parser, read) in reference::cookie::READERS {
        let got = read(&app, name);
        assert!(
            got.is_none(),
            "after Remove, {parser} reads {name}={:?} from {:?}",
            lossy(got.as_deref()),
            lossy(Some(&app))
        );
    }

    let Ok(Some(verified)) = credential(&headers, name) else { return };
    // `KeepVerified` follows a verified token: base64url and dots only (a
    // value with `,` or a space, which some parsers cut, never verifies).
    if !verified.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return;
    }
    let verified = verified.to_owned();
    let mut kept = headers.clone();
    forward(&mut kept, Some(name), Credential::KeepVerified);
    assert!(kept.get_all(COOKIE).iter().count() <= 1, "more than one Cookie header forwarded");
    assert_eq!(credential(&kept, name), Ok(Some(verified.as_str())), "jwtgate reads another value after forward");
    let app = app_header(&kept);
    for (parser, read) in reference::cookie::READERS {
        if let Some(got) = read(&app, name) {
            assert!(
                same_value(&got, verified.as_bytes()),
                "after KeepVerified ({verified:?}), {parser} reads {name}={:?} from {:?}",
                lossy(Some(&got)),
                lossy(Some(&app))
            );
        }
    }
}

/// What the app gets: the Cookie fields as one string (an HTTP/1.1 app
/// server joins repeated fields with `; `).
fn app_header(headers: &HeaderMap) -> Vec<u8> {
    let fields: Vec<&[u8]> = headers.get_all(COOKIE).iter().map(|v| v.as_bytes()).collect();
    fields.join(&b"; "[..])
}

/// The value the parser read is the verified one, quoted or not: quote
/// handling differs between parsers, which pair they read must not.
fn same_value(read: &[u8], verified: &[u8]) -> bool {
    let unquoted = match read {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    read == verified || unquoted == verified
}

fn lossy(bytes: Option<&[u8]>) -> String {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}
