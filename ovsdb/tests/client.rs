//! The JSON-RPC client against a real ovsdb-server.

mod common;

use std::time::Duration;

use common::Server;
use ovsdb::{Client, Error};
use serde_json::json;

const T: Duration = Duration::from_secs(5);

#[test]
fn client_requests_and_errors() {
    let s = Server::start_new("client");
    let (c, _rx) = Client::connect(&s.target(), T).unwrap();
    c.echo().unwrap();
    assert!(c.list_dbs().unwrap().contains(&"Open_vSwitch".to_string()));
    let schema = c.get_schema("Open_vSwitch").unwrap();
    assert!(schema["tables"]["Interface"]["columns"]["ofport"].is_object());

    // Unknown database: a JSON-RPC error.
    match c.get_schema("nope") {
        Err(Error::Rpc { method, error }) => {
            assert_eq!(method, "get_schema");
            assert!(error.to_string().contains("unknown database"), "{error}");
        }
        other => panic!("{other:?}"),
    }

    // A good transaction: one result per operation.
    let r = c
        .transact(
            "Open_vSwitch",
            vec![
                json!({"op": "insert", "table": "Open_vSwitch", "row": {}}),
                json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}),
            ],
        )
        .unwrap();
    assert_eq!(r.len(), 2);
    assert!(r[0]["uuid"].is_array());

    // §4.1.3: the second operation fails; its index and error are surfaced.
    match c.transact(
        "Open_vSwitch",
        vec![
            json!({"op": "comment", "comment": "test"}),
            json!({"op": "insert", "table": "Bridge", "row": {"name": 5}}),
        ],
    ) {
        Err(Error::Transaction { index, error, .. }) => {
            assert_eq!(index, 1);
            assert!(!error.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // A commit-time failure (referential integrity) comes after the operations.
    match c.transact(
        "Open_vSwitch",
        vec![json!({"op": "insert", "table": "Bridge", "row": {"name": "orphan", "ports": ["uuid", "11111111-1111-4111-8111-111111111111"]}})],
    ) {
        Err(Error::Transaction { index, error, details }) => {
            assert_eq!(index, 1, "{error} {details:?}");
            assert_eq!(error, "referential integrity violation");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_connection_loss_is_an_error() {
    let mut s = Server::start_new("loss");
    let (c, rx) = Client::connect(&s.target(), T).unwrap();
    c.monitor(
        "Open_vSwitch",
        json!("m"),
        json!({"Open_vSwitch": {"columns": ["next_cfg"]}}),
    )
    .unwrap();
    s.kill();
    // The notification channel closes, requests fail.
    assert!(rx.recv_timeout(T).is_err());
    assert!(c.is_closed());
    assert!(matches!(c.echo(), Err(Error::Closed)));
    assert!(c.close_reason().is_some());

    // Nothing listening: a clear connect error.
    match Client::connect(&s.target(), T) {
        Err(Error::Io(_)) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected to a dead server"),
    }
}

#[test]
fn client_answers_inactivity_probes_over_tcp() {
    // ovsdb-server probes idle TCP clients with `echo` after 5 s and drops
    // them 5 s later if they do not answer (Unix sockets are not probed).
    let mut s = Server::create("probe");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.tcp_port = Some(port);
    s.start();
    let (c, rx) = Client::connect(&format!("tcp:127.0.0.1:{port}"), T).unwrap();
    c.monitor(
        "Open_vSwitch",
        json!("m"),
        json!({"Open_vSwitch": {"columns": ["next_cfg"]}}),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(12));
    assert!(c.echoes_answered() >= 1);
    assert!(!c.is_closed(), "{:?}", c.close_reason());
    c.echo().unwrap();
    // The monitor still delivers.
    s.ok(&["--no-wait", "init"]);
    s.ok(&["--no-wait", "set", "Open_vSwitch", ".", "external_ids:a=b"]);
    let _ = rx.recv_timeout(T).unwrap();
}
