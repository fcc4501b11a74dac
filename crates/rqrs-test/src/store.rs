//! A private store for one behaviour test, of one backend: [`Store::redis`] starts a
//! `redis-server` of its own, [`Store::sqlite`] makes a database file in a folder of its own.
//! The behaviour suite runs each test once per backend, each time on a store of that backend;
//! the store is gone when the value is dropped.

use rqrs::Connection;
use tempfile::TempDir;

use crate::RedisServer;

/// A store of one backend, private to one test.
#[derive(Debug)]
pub enum Store {
    /// A private `redis-server`.
    Redis(RedisServer),
    /// A SQLite database file in a temporary folder (deleted with it).
    Sqlite(TempDir),
}

impl Store {
    /// A private `redis-server`.
    ///
    /// # Panics
    /// When no server can be started (see [`RedisServer::start`]).
    pub fn redis() -> Self {
        Store::Redis(RedisServer::start())
    }

    /// A new SQLite database file (made on the first connection).
    ///
    /// # Panics
    /// When no temporary folder can be made.
    pub fn sqlite() -> Self {
        Store::Sqlite(
            tempfile::Builder::new()
                .prefix("rqrs-sqlite-")
                .tempdir()
                .expect("a temporary folder for the database"),
        )
    }

    /// The URL that reaches the store, for another connection or process.
    pub fn url(&self) -> String {
        match self {
            Store::Redis(server) => server.url(),
            Store::Sqlite(folder) => format!("sqlite://{}/jobs.db", folder.path().display()),
        }
    }

    /// The backend's name: `redis` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// A new connection to the store.
    ///
    /// # Panics
    /// When the store cannot be reached.
    pub async fn connect(&self) -> Connection {
        rqrs::connect(&self.url())
            .await
            .expect("the test's store is reachable")
    }
}
