//! A TCP proxy on a free loopback port in front of a server, that can lose replies: once told
//! to, it drops the next reply of each connection open at that moment and cuts that connection,
//! so the command ran on the server but the client only sees a dropped connection; the
//! connections the client opens again pass. That is what a network failure between the two
//! does, made deterministic for tests.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A proxy that lives as long as this value (its threads end with their connections).
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Connections numbered below this lose their next reply (0: none).
    lose_below: AtomicU64,
    /// The number of the next connection, from 1.
    next_connection: AtomicU64,
    /// The replies lost so far.
    lost: Mutex<Vec<Vec<u8>>>,
    stopped: AtomicBool,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:<target>`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let number = accepting.next_connection.fetch_add(1, Ordering::SeqCst) + 1;
                relay(client, server, number, Arc::clone(&accepting));
            }
        });
        Proxy { port, shared }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The next reply of each connection open now is dropped, and that connection cut.
    pub fn lose_replies(&self) {
        let next = self.shared.next_connection.load(Ordering::SeqCst) + 1;
        self.shared.lose_below.store(next, Ordering::SeqCst);
    }

    /// The replies lost so far, as the server sent them (RESP).
    pub fn lost_replies(&self) -> Vec<Vec<u8>> {
        self.shared
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies both ways on two threads; the server-to-client side loses replies when told to.
fn relay(client: TcpStream, server: TcpStream, number: u64, shared: Arc<Shared>) {
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read) = client_reader.read(&mut buffer) {
            if read == 0 || server_writer.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = server_writer.shutdown(Shutdown::Both);
    });
    let (mut server_reader, mut client_writer) = (server, client);
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read) = server_reader.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if number < shared.lose_below.load(Ordering::SeqCst) {
                shared
                    .lost
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(buffer[..read].to_vec());
                break;
            }
            if client_writer.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = client_writer.shutdown(Shutdown::Both);
        let _ = server_reader.shutdown(Shutdown::Both);
    });
}
