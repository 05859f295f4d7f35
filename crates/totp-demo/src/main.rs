//! `totp-demo`: the reference web client of tower-totp. Run it with
//! `cargo run --release -p totp-demo` and open <http://127.0.0.1:3000/>.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use totp_demo::{
    Database, DemoConfig, DeviceKey, MetricsToken, POSTGRES_TOTP_SCHEMA, REDIS_PREFIX,
    REDIS_SESSION_PREFIX, app_async, connect_postgres, connect_redis, default_key_path,
    open_or_create_key, open_or_create_key_for_postgres, prometheus_builder,
};
use tower_totp::seal::Keyring;
use tracing_subscriber::EnvFilter;

/// The reference web client of tower-totp: password login, TOTP second
/// step, admin switches; data in one SQLite file (or in PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "totp-demo", version)]
struct Flags {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The SQLite file (created if missing).
    #[arg(long, value_name = "PATH", default_value = "data/totp-demo.sqlite3")]
    db: PathBuf,
    /// The password of the demo users, set when the database is created.
    #[arg(long, value_name = "PW", default_value = "demo")]
    demo_password: String,
    /// The sealing key file (default: beside the database, with the
    /// extension .key; generated with mode 0600 on first start).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Mark the session cookie Secure: only when clients reach the demo
    /// over HTTPS (a TLS proxy in front of it).
    #[arg(long)]
    secure_cookie: bool,
    /// Keep sessions and the TOTP state (enrollments included) in this
    /// Redis, e.g. redis://127.0.0.1:6379, or in a Redis Cluster: several
    /// node URLs separated by commas. Instances started with the same
    /// --redis, --db and --key-file act as one service.
    #[arg(long, value_name = "URL[,URL...]", conflicts_with = "postgres")]
    redis: Option<String>,
    /// Keep everything (users, switches, sessions, the TOTP state) in this
    /// PostgreSQL, e.g. postgres://demo@127.0.0.1/demo: instances started
    /// with the same --postgres and --key-file act as one service. --db
    /// then only places the default key file.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// The bound on every call to the TOTP store and the session store, in
    /// milliseconds: a store that has not answered by then fails the
    /// request with 503 store_unavailable (and GET /health answers 503).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    store_timeout_ms: u64,
    /// Let GET /metrics through with `Authorization: Bearer TOKEN` from
    /// any address (without it, only loopback peers may read the metrics).
    #[arg(long, value_name = "TOKEN")]
    metrics_token: Option<String>,
    /// For load runs only (scripts/loadtest): serve GET /api/me without
    /// the TOTP layer, as the baseline the guarded route is compared with.
    #[cfg(feature = "load-baseline")]
    #[arg(long)]
    load_baseline: bool,
    /// For load runs only: create the accounts load-1 to load-N (2FA
    /// required, the demo password) if they are missing.
    #[cfg(feature = "load-baseline")]
    #[arg(long, value_name = "N", default_value_t = 0)]
    load_users: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_sessions=warn")),
        )
        .init();
    match run(Flags::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                // Some errors (the redis crate's) print their source too.
                let text = s.to_string();
                if !message.ends_with(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("totp-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    // Redis or PostgreSQL first: a wrong URL should not leave a new key
    // file behind.
    let redis = match &flags.redis {
        Some(url) => Some(connect_redis(url).await?),
        None => None,
    };
    let database = match &flags.postgres {
        Some(url) => Database::Postgres(connect_postgres(url).await?),
        None => Database::File(flags.db.clone()),
    };
    let key_path = flags
        .key_file
        .clone()
        .unwrap_or_else(|| default_key_path(&flags.db));
    let (key, created) = match &database {
        Database::Postgres(pool) => open_or_create_key_for_postgres(pool, &key_path).await?,
        _ => open_or_create_key(&flags.db, &key_path)?,
    };
    if created {
        println!(
            "totp-demo: new sealing key in {} (mode 0600); keep it with the database",
            key_path.display()
        );
    }
    let mut config = DemoConfig::new(database, Keyring::new(1, key.clone()))
        .device_key(DeviceKey::derive(&key))
        .demo_password(flags.demo_password.clone())
        .secure_cookie(flags.secure_cookie)
        .store_timeout(std::time::Duration::from_millis(flags.store_timeout_ms));
    if let Some(redis) = redis {
        config = config.redis(redis);
    }
    // The process's one recorder: the library's metrics go to it, and
    // GET /metrics renders it.
    let handle = prometheus_builder().install_recorder()?;
    tower_totp::metrics::describe();
    config = config.metrics(handle);
    if let Some(token) = flags.metrics_token.clone() {
        config = config.metrics_token(MetricsToken::new(token).ok_or("--metrics-token is empty")?);
    }
    #[cfg(feature = "load-baseline")]
    {
        config = config
            .load_baseline(flags.load_baseline)
            .load_users(flags.load_users);
        if flags.load_baseline {
            println!(
                "totp-demo: LOAD BASELINE: GET /api/me answers without the TOTP layer \
                 (a password login is enough); for load runs only"
            );
        }
    }
    let demo = app_async(config).await?;
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", flags.listen))?;
    let addr = listener.local_addr()?;
    if flags.postgres.is_some() {
        // Not the URL: it may carry a password.
        println!(
            "totp-demo: everything in PostgreSQL: users, switches and sessions in the \
             schema totp_demo, TOTP state in {POSTGRES_TOTP_SCHEMA}"
        );
    } else {
        println!("totp-demo: data in {}", flags.db.display());
    }
    if flags.redis.is_some() {
        // Not the URL: it may carry a password.
        println!(
            "totp-demo: sessions and TOTP state (enrollments too) in Redis under \
             {REDIS_SESSION_PREFIX}* and {{{REDIS_PREFIX}*; users and switches in the database"
        );
    }
    if demo.seeded() {
        println!(
            "totp-demo: created the demo users, each with the password \"{pw}\":\n\
             \x20 admin   internal, administrator (Administration > Two Factor Auth)\n\
             \x20 jsmith  John Smith, internal, 2FA required: syncs an authenticator app at first login\n\
             \x20 portal  external, 2FA required (TFA for External Users is OFF at first)",
            pw = flags.demo_password
        );
    }
    println!("totp-demo: open http://{addr}/ and log in (Ctrl-C stops)");
    // With the peer's address: GET /metrics answers loopback peers.
    let service = demo
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
