//! Several processes starting at once on a new file: SQLite refuses the
//! switch to WAL with `SQLITE_BUSY` without waiting, and `open` (through
//! `use_wal`) must wait it out rather than fail.

mod common;

#[test]
fn stores_opened_together_on_a_new_file_all_open() {
    const AT_ONCE: usize = 6;
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new.sqlite3");
        common::open_at_once(&path, AT_ONCE);
    }
}
