//! `totp_sim::bench::LoginBench` on several threads: the logins really run
//! on that many OS threads, every user once per step, and they leave the
//! store exactly as one thread does.

#![allow(clippy::unwrap_used, missing_docs)]

use totp_sim::bench::LoginBench;
use tower_totp::UserId;
use tower_totp::store::SyncState;

/// Every user's sync state after the bench's logins.
fn sync_states(bench: &LoginBench, users: u32) -> Vec<SyncState> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = bench.driver().auth().engine().store();
    (0..users)
        .map(|i| {
            let all = rt
                .block_on(store.authenticators(&UserId::new(format!("u{i}"))))
                .unwrap();
            assert_eq!(all.len(), 1);
            all[0].sync
        })
        .collect()
}

#[test]
fn logins_run_on_as_many_os_threads_as_asked() {
    let mut bench = LoginBench::new(30).unwrap().threads(3).unwrap();
    // Three steps of thirty users, and a partial fourth of ten.
    bench.logins(100).unwrap();
    assert_eq!(bench.logins_by_thread(), [34, 33, 33]);
    assert_eq!(bench.distinct_threads(), 3);

    let mut one = LoginBench::new(30).unwrap();
    one.logins(100).unwrap();
    assert_eq!(one.logins_by_thread(), [100]);
    assert_eq!(one.distinct_threads(), 1);
}

#[test]
fn threads_leave_the_store_as_one_thread_does() {
    let users = 25;
    let mut one = LoginBench::new(users).unwrap();
    let mut two = LoginBench::new(users).unwrap().threads(2).unwrap();
    for n in [60, 15, 1] {
        one.logins(n).unwrap();
        two.logins(n).unwrap();
    }
    // The same seeded secrets, the same steps: every user's last accepted
    // step and learned offset agree.
    let a = sync_states(&one, users);
    assert_eq!(a, sync_states(&two, users));
    assert!(a.iter().all(|s| s.last_step.is_some()));
}
