//! The PostgreSQL starter against a real server: it answers on its port,
//! gives each caller a database of its own, stops (refusing connections)
//! and starts again on the same data and port.
#![cfg(feature = "postgres")]

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;

use tower_totp_testkit::server::postgres::PostgresServer;

/// The databases of the server, through `psql` on the URL.
fn databases(url: &str) -> Vec<String> {
    let output = Command::new(psql())
        .args([
            "-At",
            "-c",
            "SELECT datname FROM pg_database ORDER BY 1",
            url,
        ])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `psql` beside the server binaries (Debian keeps them off PATH).
fn psql() -> std::path::PathBuf {
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.is_file())
        .collect();
    bins.sort();
    bins.pop().expect("psql installed")
}

fn listening(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[test]
fn databases_survive_a_stop_and_start_again_on_the_same_port() {
    let mut server = PostgresServer::start();
    let port = server.port();
    assert_eq!(
        server.url(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );
    let url = server.create_database("kept");
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/kept"));
    assert!(databases(&url).contains(&"kept".to_owned()));

    server.stop();
    assert!(!listening(port), "a stopped server refuses connections");
    server.stop();

    server.start_again();
    assert_eq!(server.port(), port);
    assert!(databases(&server.url()).contains(&"kept".to_owned()));
}

#[test]
fn two_servers_have_their_own_ports_and_data() {
    let a = PostgresServer::start();
    let b = PostgresServer::start();
    assert_ne!(a.port(), b.port());
    a.create_database("only_on_a");
    assert!(!databases(&b.url()).contains(&"only_on_a".to_owned()));
}

#[test]
fn dropped_server_is_stopped() {
    let server = PostgresServer::start();
    let port = server.port();
    assert!(listening(port));
    drop(server);
    assert!(!listening(port));
}
