//! The reference web client on a loopback port, for the `--target` tests:
//! an in-memory demo with the three seeded users and "TFA for External
//! Users" switched on (so `portal` is asked for codes too), served by a
//! runtime of its own while the test's target run drives it over HTTP.

use std::net::SocketAddr;

use tokio::runtime::Runtime;
use totp_sim::driver::Account;
use totp_sim::target::demo_accounts;
use tower_totp::UserId;
use tower_totp::seal::{Keyring, SealingKey};

/// Start the demo on a free loopback port. Keep the runtime alive for as
/// long as the demo must answer.
pub(crate) fn start() -> (Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let demo = totp_demo::app(
        totp_demo::DemoConfig::new(
            totp_demo::Database::Memory,
            Keyring::new(1, SealingKey::generate().unwrap()),
        )
        .password_cost(totp_demo::PasswordCost::Minimal),
    )
    .unwrap();
    let mut switches = demo.settings().get();
    switches.external_users = true;
    rt.block_on(demo.settings().set(switches)).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = demo.router();
    rt.spawn(async move { axum::serve(listener, router).await });
    (rt, addr)
}

/// The seeded users' accounts, `portal` included.
pub(crate) fn accounts() -> Vec<Account> {
    let mut accounts = demo_accounts("demo");
    accounts.push(Account {
        id: UserId::new("portal"),
        password: "demo".into(),
    });
    accounts
}
