//! Properties of the request classifier over arbitrary bytes.

use baton_handoff::classify::{classify, Classification, Request, ServiceKind};
use proptest::collection::vec;
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = ServiceKind> {
    prop_oneof![Just(ServiceKind::Http), Just(ServiceKind::Tls)]
}

/// Bytes that look enough like a request to get past the first checks.
fn near_miss() -> impl Strategy<Value = Vec<u8>> {
    let hello = include_bytes!("fixtures/client_hello_openssl.bin").to_vec();
    let http = b"GET /a/b HTTP/1.1\r\nHost: www.example.com:80\r\nAccept: */*\r\n\r\n".to_vec();
    (
        prop_oneof![Just(hello), Just(http)],
        vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut bytes, flips)| {
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048), kind in kind()) {
        let _ = classify(&bytes, kind);
    }

    #[test]
    fn near_misses_never_panic(bytes in near_miss(), kind in kind(), end in any::<usize>()) {
        let _ = classify(&bytes[..end % (bytes.len() + 1)], kind);
    }

    /// Holding more bytes never changes an answer already given, and never
    /// turns Invalid into something else: the origin can act on the first
    /// answer that is not NeedMore.
    #[test]
    fn answers_are_stable_as_bytes_arrive(bytes in near_miss(), kind in kind(), cut in any::<usize>()) {
        let cut = cut % (bytes.len() + 1);
        let full = classify(&bytes, kind);
        match classify(&bytes[..cut], kind) {
            Classification::NeedMore => {}
            // The reason may differ: more bytes can reveal an earlier fault.
            Classification::Invalid(_) => prop_assert!(matches!(full, Classification::Invalid(_))),
            done => prop_assert_eq!(done, full),
        }
    }

    #[test]
    fn any_host_round_trips(host in "[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?", path in "/[!-~]{0,60}") {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", host.to_uppercase());
        prop_assert_eq!(
            classify(request.as_bytes(), ServiceKind::Http),
            Classification::Done(Request::Http { method: "GET".into(), path, host: Some(host) })
        );
    }
}
