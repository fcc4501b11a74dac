//! A private store for one behaviour test, of one backend: [`Store::redis`] starts a
//! `redis-server` of its own. The behaviour suite runs each test once per backend, each time on
//! a store of that backend; the store is gone when the value is dropped.

use rqrs::Connection;

use crate::RedisServer;

/// A store of one backend, private to one test.
#[derive(Debug)]
pub enum Store {
    /// A private `redis-server`.
    Redis(RedisServer),
}

impl Store {
    /// A private `redis-server`.
    ///
    /// # Panics
    /// When no server can be started (see [`RedisServer::start`]).
    pub fn redis() -> Self {
        Store::Redis(RedisServer::start())
    }

    /// The URL that reaches the store, for another connection or process.
    pub fn url(&self) -> String {
        match self {
            Store::Redis(server) => server.url(),
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
