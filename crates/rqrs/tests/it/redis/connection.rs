//! What only the Redis backend has: ACL users, TLS, Sentinel failovers, waiting for replicas.

use std::time::{Duration, Instant};

use rqrs::{Functions, Job, JobStatus, Queue, Worker};
use rqrs_test::{RedisServer, SentinelGroup};

use crate::work;

#[tokio::test]
async fn an_acl_user_works_and_a_wrong_password_is_a_clear_error() {
    let server = RedisServer::start_with(&[
        "--user", "default", "off", "--user", "worker", "on", ">s3cret", "~*", "&*", "+@all",
    ]);
    let url = format!("redis://worker:s3cret@127.0.0.1:{}", server.port());
    let conn = rqrs::connect(&url).await.unwrap();
    assert!(
        !conn.url().contains("s3cret"),
        "the password is not shown: {}",
        conn.url()
    );
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (2, 2))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 2, Functions::new()).await;
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Finished
    );

    let wrong = format!("redis://worker:nope@127.0.0.1:{}", server.port());
    let error = rqrs::connect(&wrong).await.unwrap_err();
    assert!(
        error.to_string().to_lowercase().contains("auth")
            || error.to_string().contains("WRONGPASS"),
        "{error}"
    );
    assert!(!error.to_string().contains("nope"));
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = rqrs::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(error.is_connection(), "{error:?}");
    let error = rqrs::connect(&format!("redis+sentinel://127.0.0.1:{port}/mymaster"))
        .await
        .unwrap_err();
    assert!(error.is_connection(), "{error:?}");
    let error = rqrs::connect("nonsense://x").await.unwrap_err();
    assert!(
        matches!(error, rqrs::Error::Invalid { what: "url", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn tls_connections_work_with_the_servers_certificate_authority() {
    let server = rqrs_test::TlsRedisServer::start();
    let conn = rqrs::connect_tls(&server.url(), server.ca_pem())
        .await
        .unwrap();
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (20, 22))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 2, Functions::new()).await;
    let job = Job::fetch(&conn, job.id()).await.unwrap();
    assert_eq!(
        job.return_value().await.unwrap(),
        Some(serde_json::json!(42))
    );
    // Without that authority the server's certificate is not trusted.
    assert!(rqrs::connect(&server.url()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_follows_the_master_through_a_failover() {
    let hang = Duration::from_secs(60);
    let mut group = tokio::task::spawn_blocking(|| SentinelGroup::start(1, 3))
        .await
        .unwrap();
    let conn = rqrs::connect(&group.url()).await.unwrap();
    let worker = Worker::builder(&conn)
        .queues(["default"])
        .functions(rqrs_test::fixtures::functions())
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let name = worker.name().to_owned();
    let task = tokio::spawn(worker.work());
    let queue = Queue::new(&conn, "default");
    let before = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    let finished = |id: rqrs::JobId| {
        let conn = conn.clone();
        async move {
            rqrs_test::wait_for(&format!("{id} to finish"), hang, || async {
                Job::fetch(&conn, &id)
                    .await
                    .ok()
                    .filter(|job| job.status() == JobStatus::Finished)
            })
            .await
        }
    };
    finished(before.id().clone()).await;
    let old = group.master_port();
    // The replica has the first job, finished.
    tokio::task::block_in_place(|| group.replicate());

    tokio::task::block_in_place(|| group.kill_master());
    // While no master answers, an enqueue fails with a connection error; none is dropped
    // silently. The Sentinels promote the replica and the connection moves to it.
    let started = Instant::now();
    let mut refused = 0;
    let after = loop {
        match queue.enqueue("fixtures.add", (3, 4)).send().await {
            Ok(job) => break job,
            Err(error) => {
                assert!(error.is_connection(), "{error:?}");
                refused += 1;
                assert!(
                    started.elapsed() < hang,
                    "no enqueue succeeded within {hang:?} of the kill: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(
        refused > 0,
        "the killed master cannot have taken the enqueue"
    );
    let new = tokio::task::block_in_place(|| group.wait_for_failover(old));
    let mut promoted = group
        .server(new)
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for job in [&before, &after] {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("rq:job:{}", job.id()))
            .query_async(&mut promoted)
            .await
            .unwrap();
        assert!(exists, "job {} is on the new master", job.id());
    }

    // The worker followed: its blocking wait took the new job, and its control channel
    // listens on the new master.
    let after = finished(after.id().clone()).await;
    assert_eq!(
        after.return_value().await.unwrap(),
        Some(serde_json::json!(7))
    );
    rqrs_test::wait_for("the worker to hear the shutdown command", hang, || async {
        rqrs::send_shutdown_command(&conn, &name)
            .await
            .ok()
            .filter(|heard| *heard)
    })
    .await;
    tokio::time::timeout(hang, task)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_logs_in_to_the_sentinels_and_the_servers() {
    let group = tokio::task::spawn_blocking(|| SentinelGroup::start_with_password(1, 1, "s3cret"))
        .await
        .unwrap();
    let with = |server: &str, sentinel: &str| {
        format!(
            "{}?sentinel_password={sentinel}",
            group.url().replacen(
                "redis+sentinel://",
                &format!("redis+sentinel://:{server}@"),
                1
            )
        )
    };
    let conn = rqrs::connect(&with("s3cret", "s3cret")).await.unwrap();
    assert!(!conn.url().contains("s3cret"), "{}", conn.url());
    let job = Queue::new(&conn, "default")
        .enqueue("fixtures.add", (2, 2))
        .send()
        .await
        .unwrap();
    work(&conn, &["default"], 2, Functions::new()).await;
    assert_eq!(
        Job::fetch(&conn, job.id()).await.unwrap().status(),
        JobStatus::Finished
    );

    for (server, sentinel) in [("nope", "s3cret"), ("s3cret", "nope")] {
        let error = rqrs::connect(&with(server, sentinel)).await.unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("nope") && !text.contains("s3cret"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_sentinel_url_speaks_tls_to_the_sentinels_and_follows_a_failover() {
    let mut group = tokio::task::spawn_blocking(|| SentinelGroup::start_tls(1, 3))
        .await
        .unwrap();
    assert!(group.url().starts_with("rediss+sentinel://"));
    // Without the group's certificate authority, nothing is trusted.
    assert!(rqrs::connect(&group.url()).await.is_err());
    let conn = rqrs::connect_tls(&group.url(), &group.ca_pem())
        .await
        .unwrap();
    let queue = Queue::new(&conn, "default");
    let before = queue.enqueue("fixtures.add", (1, 2)).send().await.unwrap();
    tokio::task::block_in_place(|| group.replicate());
    let old = tokio::task::block_in_place(|| group.kill_master());
    let started = Instant::now();
    let after = loop {
        match queue.enqueue("fixtures.add", (3, 4)).send().await {
            Ok(job) => break job,
            Err(error) => {
                assert!(error.is_connection(), "{error:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no enqueue succeeded within 60 s of the kill: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::task::block_in_place(|| group.wait_for_failover(old));
    work(&conn, &["default"], 2, Functions::new()).await;
    for (job, sum) in [(&before, 3), (&after, 7)] {
        let job = Job::fetch(&conn, job.id()).await.unwrap();
        assert_eq!(
            job.return_value().await.unwrap(),
            Some(serde_json::json!(sum))
        );
    }
}

#[tokio::test]
async fn an_enqueue_can_wait_for_replicas_and_says_when_they_did_not_acknowledge_it() {
    let master = RedisServer::start();
    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let conn = rqrs::connect(&master.url()).await.unwrap();
    let mut replica_conn = replica
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    rqrs_test::wait_for("the replica to sync", Duration::from_secs(20), || {
        let mut replica_conn = replica_conn.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut replica_conn)
                .await
                .ok()?;
            info.contains("master_link_status:up").then_some(())
        }
    })
    .await;

    let durable = Queue::new(&conn, "default").wait_for_replicas(1, Duration::from_secs(10));
    let job = durable
        .enqueue("fixtures.add", (1, 2))
        .send()
        .await
        .unwrap();
    // Acknowledged: the replica holds it.
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("rq:job:{}", job.id()))
        .query_async(&mut replica_conn)
        .await
        .unwrap();
    assert!(exists);
    let many = durable
        .enqueue_many((0..3).map(|i| durable.enqueue("fixtures.add", (i, i))))
        .await
        .unwrap();
    assert_eq!(many.len(), 3);

    // Two replicas asked for, one there: the jobs are on the master, and the caller is told.
    let demanding = Queue::new(&conn, "default").wait_for_replicas(2, Duration::from_millis(100));
    let error = demanding
        .enqueue("fixtures.add", (3, 4))
        .send()
        .await
        .unwrap_err();
    let rqrs::Error::NotReplicated {
        jobs,
        acknowledged,
        replicas,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((acknowledged, replicas), (1, 2));
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        Job::fetch(&conn, &jobs[0]).await.unwrap().status(),
        JobStatus::Queued
    );
}
