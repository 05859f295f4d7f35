//! The memory store against the store conformance suite: one test per case.

use tower_totp::store::MemoryStore;

tower_totp::store_conformance_tests!(make = MemoryStore::new());
