//! Several processes starting at once on a new file: SQLite refuses the
//! switch to WAL with `SQLITE_BUSY` without waiting, and `open` (through
//! `use_wal`) must wait it out rather than fail.

use std::sync::Barrier;

use tower_totp_sqlite::SqliteStore;

#[test]
fn stores_opened_together_on_a_new_file_all_open() {
    const AT_ONCE: usize = 6;
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new.sqlite3");
        let start = Barrier::new(AT_ONCE);
        std::thread::scope(|s| {
            let opening: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        SqliteStore::open(&path)
                    })
                })
                .collect();
            for o in opening {
                o.join().expect("thread").expect("every store opens");
            }
        });
    }
}
