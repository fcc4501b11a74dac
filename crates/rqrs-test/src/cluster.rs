//! A private Redis Cluster: three masters (no replicas) on free loopback ports, each a
//! [`RedisServer`] in cluster mode, their 16384 slots split by `redis-cli --cluster create`;
//! gone with the value.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::RedisServer;

/// The key prefix the cluster tests use: a hash tag, so that every key is in one slot.
pub const CLUSTER_PREFIX: &str = "{rq}";

/// Three cluster-mode masters that share the slots.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three masters and makes them one cluster, waiting until every node says
    /// `cluster_state:ok`.
    ///
    /// # Panics
    /// When a node does not start, `redis-cli --cluster create` fails, or the cluster is not
    /// ready within 30 s.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs (apt-get install redis-tools)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.is_ready() {
            assert!(
                Instant::now() < deadline,
                "the cluster is not ready after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn is_ready(&self) -> bool {
        self.nodes.iter().all(|node| {
            let Ok(mut conn) = node.client().get_connection() else {
                return false;
            };
            redis::cmd("CLUSTER")
                .arg("INFO")
                .query::<String>(&mut conn)
                .is_ok_and(|info| info.contains("cluster_state:ok"))
        })
    }

    /// `redis+cluster://127.0.0.1:<port>,...`: every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The nodes, to look at the data directly.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
