//! [`RedisCluster`]: a real Redis Cluster of six `redis-server` processes
//! (three masters, a replica each) on free loopback ports, for the tests of
//! failover and replica acknowledgement.
//!
//! Each node has a temporary directory of its own (its `nodes.conf`) and a
//! port whose cluster bus port (port + 10000) was free too. The nodes keep
//! no data on disk: a killed node that comes back ([`RedisCluster::restart`])
//! is empty, and rejoins as a replica of whoever took its slots.
//! `cluster-node-timeout` is one second, so a killed master is replaced
//! within a few seconds. Every wait polls the servers, bounded by
//! [`WAIT_BOUND`]; the admin calls here are blocking (call them from a
//! multi-threaded runtime, or `spawn_blocking`, while requests are in
//! flight).

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tower_totp_redis::redis::{self, Connection};

use super::free_port;
use super::process::{self, StartError};

/// How many nodes: three masters and one replica each.
pub const NODES: usize = 6;

/// The longest any wait here polls (the cluster to form, a replica to be
/// promoted, a replica to catch up) before it panics.
pub const WAIT_BOUND: Duration = Duration::from_secs(20);

/// `cluster-node-timeout`: how long a node may be unreachable before the
/// others count it as failed (and a replica of a failed master takes over).
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// What `redis-server` logs once it accepts connections.
const READY: &str = "Ready to accept connections";

/// How many ports to try for one node.
const PORT_TRIES: usize = 5;

/// How long one admin call may take.
const ADMIN_TIMEOUT: Duration = Duration::from_millis(500);

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(50);

/// One node: its port, its directory, its process.
#[derive(Debug)]
struct Node {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// Whether it runs and answers (started, not killed, not paused).
    fn answers(&self) -> bool {
        self.child.is_some() && !self.paused
    }
}

/// A running Redis Cluster of [`NODES`] nodes, all killed when dropped.
/// Nodes are named by their index in [`RedisCluster::urls`].
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
}

/// One line of `CLUSTER NODES`, the parts we read.
#[derive(Debug)]
struct NodeLine {
    port: u16,
    master: bool,
    failed: bool,
    /// Slot ranges it serves, inclusive.
    slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Start six nodes, make them one cluster (`redis-cli --cluster create
    /// ... --cluster-replicas 1`) and wait until every node says
    /// `cluster_state:ok` and every replica is in sync with its master.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is not installed (`apt-get install
    /// redis-server`; `scripts/test` does it), or the cluster does not form
    /// within [`WAIT_BOUND`].
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("no Redis Cluster: {e}"))
    }

    /// As [`RedisCluster::start`], or say why the servers did not start.
    ///
    /// # Errors
    ///
    /// If `redis-server` cannot be run or exits on every port tried.
    ///
    /// # Panics
    ///
    /// If the servers run but do not form a cluster.
    pub fn try_start() -> Result<Self, StartError> {
        let mut cluster = Self { nodes: Vec::new() };
        for _ in 0..NODES {
            cluster.nodes.push(start_node()?);
        }
        cluster.create();
        cluster.wait_healthy();
        Ok(cluster)
    }

    /// `redis-cli --cluster create`: the first three nodes become masters
    /// (`redis-cli` chooses), the others their replicas.
    fn create(&self) {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"]);
        for n in &self.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        cmd.args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): install redis-server"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URLs of all nodes, masters and replicas, by index.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// The URL of node `index`.
    pub fn url(&self, index: usize) -> String {
        format!("redis://127.0.0.1:{}/", self.nodes[index].port)
    }

    /// The port of node `index`.
    pub fn port(&self, index: usize) -> u16 {
        self.nodes[index].port
    }

    /// The slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let mut conn = self.admin();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .expect("CLUSTER KEYSLOT")
    }

    /// The index of the node that serves `key` as master, as the first
    /// answering node sees it.
    ///
    /// # Panics
    ///
    /// If no answering node knows a live master for it.
    pub fn master_of_key(&self, key: &str) -> usize {
        let slot = self.slot_of(key);
        let lines = cluster_nodes(&mut self.admin());
        self.master_of_slot(&lines, slot)
            .unwrap_or_else(|| panic!("no master for slot {slot}"))
    }

    /// The indices of the replicas of master `index`, as the master itself
    /// lists them (`INFO replication`, in sync or not; the other nodes
    /// learn who replicates whom by gossip, a little later).
    ///
    /// # Panics
    ///
    /// If the master does not answer.
    pub fn replicas_of(&self, index: usize) -> Vec<usize> {
        let mut conn = self.connect(index).expect("the master answering");
        let master_info = info(&mut conn, "replication").expect("INFO replication");
        replica_ports(&master_info, false)
            .into_iter()
            .filter_map(|port| self.index_of_port(port))
            .collect()
    }

    /// Kill node `index` (SIGKILL, a crash), at once.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn kill(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let mut child = node.child.take().expect("the node running");
        process::stop(&mut child);
        node.paused = false;
    }

    /// Start killed node `index` again on its port, with its `nodes.conf`
    /// and no data: it rejoins the cluster, as a replica of the master that
    /// took its slots.
    ///
    /// # Panics
    ///
    /// If it still runs, or does not come up.
    pub fn restart(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.child.is_none(), "node {index} still runs");
        let child = spawn(node.port, node.dir.path())
            .unwrap_or_else(|e| panic!("node {index} did not restart: {e}"));
        node.child = Some(child);
    }

    /// Freeze node `index` (SIGSTOP): its connections stay open, nothing
    /// answers, a replica acknowledges nothing. After [`NODE_TIMEOUT`] the
    /// other nodes count it as failed.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn pause(&mut self, index: usize) {
        self.signal(index, Signal::STOP);
        self.nodes[index].paused = true;
    }

    /// Let a paused node go on (SIGCONT).
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn resume(&mut self, index: usize) {
        self.signal(index, Signal::CONT);
        self.nodes[index].paused = false;
    }

    fn signal(&self, index: usize, signal: Signal) {
        let child = self.nodes[index].child.as_ref().expect("the node running");
        process::signal(child, signal).expect("a signal to the node");
    }

    /// Wait until every answering node sees a live master other than
    /// `old` serving `key`'s slot, and says `cluster_state:ok`; its index.
    ///
    /// # Panics
    ///
    /// If that takes longer than [`WAIT_BOUND`].
    pub fn wait_promoted(&self, key: &str, old: usize) -> usize {
        let slot = self.slot_of(key);
        wait_until(&format!("a new master for slot {slot}"), || {
            let mut seen = None;
            for i in self.answering() {
                let mut conn = self.connect(i).ok()?;
                if !cluster_ok(&mut conn) {
                    return None;
                }
                let lines = try_cluster_nodes(&mut conn)?;
                let master = self.master_of_slot(&lines, slot)?;
                if master == old || !self.nodes[master].answers() {
                    return None;
                }
                if seen.is_some_and(|s| s != master) {
                    return None;
                }
                seen = Some(master);
            }
            seen
        })
    }

    /// Wait until master `index` has at least one replica that has caught
    /// up with it (the master lists it `state=online`; the replica's link
    /// is up, it is not loading, and its replication offset has reached
    /// the master's) and every answering node says `cluster_state:ok`:
    /// from then on, a `WAIT 1` on that master is answered.
    ///
    /// # Panics
    ///
    /// If that takes longer than [`WAIT_BOUND`].
    pub fn wait_replicated(&self, index: usize) {
        wait_until(&format!("a replica in sync with node {index}"), || {
            let all_ok = self
                .answering()
                .all(|i| self.connect(i).is_ok_and(|mut c| cluster_ok(&mut c)));
            if !all_ok {
                return None;
            }
            let mut master = self.connect(index).ok()?;
            let master_info = info(&mut master, "replication")?;
            let offset: u64 = field(&master_info, "master_repl_offset")?.parse().ok()?;
            let caught_up = online_replica_ports(&master_info).into_iter().any(|port| {
                let Some(mut replica) = self.index_of_port(port).and_then(|i| self.connect(i).ok())
                else {
                    return false;
                };
                let (Some(repl), Some(persistence)) = (
                    info(&mut replica, "replication"),
                    info(&mut replica, "persistence"),
                ) else {
                    return false;
                };
                field(&repl, "master_link_status") == Some("up")
                    && field(&repl, "master_sync_in_progress") == Some("0")
                    && field(&persistence, "loading") == Some("0")
                    && field(&repl, "slave_repl_offset")
                        .and_then(|o| o.parse::<u64>().ok())
                        .is_some_and(|o| o >= offset)
            });
            caught_up.then_some(())
        });
    }

    /// Wait until every node says `cluster_state:ok` and every master has
    /// a replica in sync.
    fn wait_healthy(&self) {
        wait_until("the cluster to form", || {
            let mut masters = 0;
            for i in 0..self.nodes.len() {
                let mut conn = self.connect(i).ok()?;
                if !cluster_ok(&mut conn) {
                    return None;
                }
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut conn)
                    .ok()?;
                if info.contains("role:master") {
                    if online_replicas(&mut conn) < 1 {
                        return None;
                    }
                    masters += 1;
                }
            }
            (masters == NODES / 2).then_some(())
        });
    }

    /// The nodes that run and are not paused.
    fn answering(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].answers())
    }

    /// A connection to the first answering node.
    fn admin(&self) -> Connection {
        self.answering()
            .find_map(|i| self.connect(i).ok())
            .expect("an answering cluster node")
    }

    /// A plain (not cluster) connection to node `index`, bounded.
    fn connect(&self, index: usize) -> redis::RedisResult<Connection> {
        let client = redis::Client::open(self.url(index))?;
        let conn = client.get_connection_with_timeout(ADMIN_TIMEOUT)?;
        conn.set_read_timeout(Some(ADMIN_TIMEOUT))?;
        conn.set_write_timeout(Some(ADMIN_TIMEOUT))?;
        Ok(conn)
    }

    fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port == port)
    }

    /// The index of the live master that serves `slot` in `lines`.
    fn master_of_slot(&self, lines: &[NodeLine], slot: u16) -> Option<usize> {
        lines
            .iter()
            .filter(|l| l.master && !l.failed)
            .find(|l| l.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .and_then(|l| self.index_of_port(l.port))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                process::stop(&mut child);
            }
        }
    }
}

/// A port that is free, and whose cluster bus port (port + 10000) is free
/// too.
fn cluster_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port with a free cluster bus port");
}

/// One node, in a fresh directory, on a port that worked.
fn start_node() -> Result<Node, StartError> {
    let dir = tempfile::tempdir().expect("a temporary node directory");
    let mut last = StartError::Exited;
    for _ in 0..PORT_TRIES {
        let port = cluster_port();
        match spawn(port, dir.path()) {
            Ok(child) => {
                return Ok(Node {
                    port,
                    dir,
                    child: Some(child),
                    paused: false,
                });
            }
            Err(e @ StartError::Spawn(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `redis-server` as a cluster node on `port`, its `nodes.conf` in `dir`.
fn spawn(port: u16, dir: &Path) -> Result<Child, StartError> {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args([
            "--cluster-node-timeout",
            &NODE_TIMEOUT.as_millis().to_string(),
        ])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        // A replica's first full sync at once, not after five seconds.
        .args(["--repl-diskless-sync-delay", "0"]);
    process::start(&mut cmd, READY)
}

/// Poll `f` every [`POLL`] until it gives a value, at most [`WAIT_BOUND`].
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < WAIT_BOUND,
            "gave up waiting for {what} after {WAIT_BOUND:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Whether the node says `cluster_state:ok`.
fn cluster_ok(conn: &mut Connection) -> bool {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(conn)
        .is_ok_and(|info| info.lines().any(|l| l.trim() == "cluster_state:ok"))
}

/// How many replicas a master has in sync (`state=online`).
fn online_replicas(conn: &mut Connection) -> usize {
    info(conn, "replication").map_or(0, |info| online_replica_ports(&info).len())
}

/// The ports of the replicas a master's `INFO replication` lists online
/// (`slave0:ip=...,port=...,state=online,...`).
fn online_replica_ports(info: &str) -> Vec<u16> {
    replica_ports(info, true)
}

/// The ports of the replicas a master's `INFO replication` lists, only
/// those online if `online`.
fn replica_ports(info: &str, online: bool) -> Vec<u16> {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains(",port="))
        .filter(|l| !online || l.contains("state=online"))
        .filter_map(|l| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix("port="))
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// `INFO <section>`.
fn info(conn: &mut Connection, section: &str) -> Option<String> {
    redis::cmd("INFO").arg(section).query(conn).ok()
}

/// The value of `name:value` in an `INFO` reply.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn cluster_nodes(conn: &mut Connection) -> Vec<NodeLine> {
    try_cluster_nodes(conn).expect("CLUSTER NODES")
}

/// `CLUSTER NODES`, parsed: `<id> <ip:port@bus[,host]> <flags> <master>
/// <ping> <pong> <epoch> <link> <slot ranges...>`.
fn try_cluster_nodes(conn: &mut Connection) -> Option<Vec<NodeLine>> {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(conn).ok()?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_node_line)
        .collect()
}

fn parse_node_line(line: &str) -> Option<NodeLine> {
    let mut parts = line.split_whitespace().skip(1);
    let addr = parts.next()?;
    let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
    let flags = parts.next()?;
    let flag = |f: &str| flags.split(',').any(|x| x == f);
    // master, ping, pong, epoch, link state
    let slots = parts
        .skip(5)
        // Migrating and importing entries (`[slot->-id]`) are not served.
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let one = s.parse().ok()?;
                Some((one, one))
            }
        })
        .collect();
    Some(NodeLine {
        port,
        master: flag("master"),
        failed: flag("fail") || flag("fail?"),
        slots,
    })
}

/// Stores and connections on the cluster, with the Redis store crate's
/// settings.
mod connect {
    use tower_totp_redis::redis::cluster_async::ClusterConnection;
    use tower_totp_redis::{RedisStore, cluster_config};

    use super::RedisCluster;
    use crate::server::redis::fresh_prefix;

    impl RedisCluster {
        /// A store on the cluster (`RedisStore::connect_nodes` with every
        /// node's URL) under a [`fresh_prefix`], acknowledged by one
        /// replica as on any cluster connection.
        pub async fn store(&self) -> RedisStore {
            RedisStore::connect_nodes(&self.urls())
                .await
                .expect("a connection to the test cluster")
                .with_prefix(fresh_prefix())
        }

        /// A cluster connection with the crate's settings.
        pub async fn connection(&self) -> ClusterConnection {
            cluster_config(self.urls())
                .build()
                .expect("a cluster client")
                .get_async_connection()
                .await
                .expect("a connection to the test cluster")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lines_parse() {
        let l = parse_node_line(
            "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002,host master - 0 \
             1426238316232 2 connected 5461-10922 11000 [11001->-abc]",
        )
        .unwrap();
        assert_eq!(l.port, 30002);
        assert!(l.master && !l.failed);
        assert_eq!(l.slots, vec![(5461, 10922), (11000, 11000)]);
        let r = parse_node_line(
            "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004 myself,slave,fail? \
             e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected",
        )
        .unwrap();
        assert!(!r.master && r.failed);
        assert!(r.slots.is_empty());
    }

    #[test]
    fn info_fields_and_replica_ports_parse() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=40001,state=online,offset=42,lag=0\r\n\
            slave1:ip=127.0.0.1,port=40002,state=wait_bgsave,offset=0,lag=0\r\n\
            master_repl_offset:42\r\n";
        assert_eq!(online_replica_ports(info), vec![40001]);
        assert_eq!(replica_ports(info, false), vec![40001, 40002]);
        assert_eq!(field(info, "master_repl_offset"), Some("42"));
        assert_eq!(field(info, "role"), Some("master"));
        assert_eq!(field(info, "master"), None);
    }
}
