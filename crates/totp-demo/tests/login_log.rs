//! What a refused login writes to the log. Alone in its test binary, with
//! the process-wide subscriber: a thread's own subscriber (`set_default`)
//! can miss events while other tests of the same binary run on other
//! threads (tracing caches each call site's interest process-wide), which
//! made this test fail once in CI.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Capture, TestDemo};
use http::StatusCode;

/// A name that belongs to nobody is often a password typed into the wrong
/// field: the log says `(unknown)`, never the name. A known user's refused
/// password names the user.
#[tokio::test]
async fn a_password_typed_as_the_user_name_never_reaches_the_log() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.subscriber()).unwrap();
    {
        let a = c.try_login("Tr0ub4dor&3", "jsmith").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
        let a = c.try_login("jsmith", "wrong").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    }
    let log = capture.text();
    assert!(!log.contains("Tr0ub4dor"), "{log}");
    assert!(log.contains("(unknown)"), "{log}");
    assert!(log.contains("jsmith"), "{log}");
}
