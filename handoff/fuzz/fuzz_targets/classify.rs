//! The request classifier over arbitrary bytes, for both service kinds:
//! nothing may panic, and an answer other than NeedMore must not change
//! when more bytes arrive.
#![no_main]

use baton_handoff::classify::{classify, Classification, ServiceKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the service kind and where the bytes are cut.
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        ServiceKind::Http
    } else {
        ServiceKind::Tls
    };
    let full = classify(bytes, kind);
    let cut = bytes.len() * usize::from(selector >> 1) / 127;
    match classify(&bytes[..cut.min(bytes.len())], kind) {
        Classification::NeedMore => {}
        Classification::Invalid(_) => assert!(matches!(full, Classification::Invalid(_))),
        done => assert_eq!(done, full),
    }
});
