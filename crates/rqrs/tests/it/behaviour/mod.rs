//! The behaviour suite: what the library does, through its public API only (and, to stage the
//! states faults leave behind, the test hooks of `rqrs::testing`), whatever the backend. Each
//! test is written once with [`on_every_backend!`], which runs it on a private store of every
//! backend: a test `name` becomes `name::redis` and `name::sqlite`, and a new backend is one
//! more test in the macro.

/// Defines the async test `$name`, taking the test's `&Store`, once per backend.
/// `multi_thread` before `async fn` runs it on a two-thread runtime.
macro_rules! on_every_backend {
    ($(#[doc = $doc:literal])* async fn $name:ident($store:ident: &Store) $body:block) => {
        on_every_backend!(@test [tokio::test] $(#[doc = $doc])* $name($store) $body);
    };
    ($(#[doc = $doc:literal])* multi_thread async fn $name:ident($store:ident: &Store) $body:block) => {
        on_every_backend!(
            @test [tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[doc = $doc])* $name($store) $body
        );
    };
    (@test [$($test:tt)*] $(#[doc = $doc:literal])* $name:ident($store:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn test($store: &rqrs_test::Store) $body

            #[$($test)*]
            async fn redis() {
                test(&rqrs_test::Store::redis()).await;
            }

            #[$($test)*]
            async fn sqlite() {
                test(&rqrs_test::Store::sqlite()).await;
            }
        }
    };
}

mod context;
mod enqueue;
mod isolation;
mod job_ops;
mod lifecycle;
mod rate_limit;
mod registry;
mod scheduler;
mod worker;
