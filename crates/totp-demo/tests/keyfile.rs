//! The sealing key file: generated with owner-only permissions, read back,
//! never overwritten.

#![allow(clippy::unwrap_used)]

use totp_demo::{create_key, default_key_path, read_key};

#[test]
fn the_key_file_sits_beside_the_database() {
    assert_eq!(
        default_key_path(std::path::Path::new("data/totp-demo.sqlite3")),
        std::path::Path::new("data/totp-demo.key")
    );
}

#[test]
fn a_new_key_is_owner_only_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("demo.key");
    assert!(read_key(&path).unwrap().is_none());
    let key = create_key(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = read_key(&path).unwrap().unwrap();
    assert_eq!(*again.to_hex(), *key.to_hex());
    // Never overwritten.
    assert!(create_key(&path).is_err());
    assert_eq!(*read_key(&path).unwrap().unwrap().to_hex(), *key.to_hex());
}

#[test]
fn a_damaged_key_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.key");
    std::fs::write(&path, "not hex\n").unwrap();
    assert!(read_key(&path).is_err());
}

#[test]
fn an_existing_database_without_its_key_does_not_get_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite3");
    let key_path = default_key_path(&db);
    // New database: a key is made.
    let (key, created) = totp_demo::open_or_create_key(&db, &key_path).unwrap();
    assert!(created);
    std::fs::write(&db, b"").unwrap();
    // Next start: the same key.
    let (again, created) = totp_demo::open_or_create_key(&db, &key_path).unwrap();
    assert!(!created);
    assert_eq!(*again.to_hex(), *key.to_hex());
    // The key file lost: refuse, and do not create one.
    std::fs::remove_file(&key_path).unwrap();
    let err = totp_demo::open_or_create_key(&db, &key_path).unwrap_err();
    assert!(
        matches!(err, totp_demo::DemoError::KeyMissing { .. }),
        "{err}"
    );
    assert!(!key_path.exists());
}
