use rqrs::{Functions, Job, JobStatus, Queue};
use rqrs_test::RedisServer;

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
