//! The tests' DynamoDB: dynalite, installed with npm and started by the
//! tests themselves on 127.0.0.1, answers DynamoDB's JSON protocol (here,
//! its refusal of a request without a signature), on disk survives a
//! restart on the same port, and is gone once dropped.

use std::net::SocketAddr;

use switchyard_tests::dynalite::Dynalite;
use switchyard_tests::http::request;

/// An unsigned `ListTables`, as DynamoDB answers it: refused, by name.
fn refused_unsigned(endpoint: &str) -> Option<String> {
    let address: SocketAddr = endpoint.strip_prefix("http://")?.parse().ok()?;
    let answer = request(
        address,
        "POST",
        "/",
        &[
            ("x-amz-target", "DynamoDB_20120810.ListTables"),
            ("content-type", "application/x-amz-json-1.0"),
        ],
        "{}",
    )?;
    (answer.status == 400).then_some(answer.body)
}

#[test]
fn dynalite_answers_the_dynamodb_protocol_and_survives_a_restart_on_disk() {
    let mut dynalite = Dynalite::start_on_disk();
    let endpoint = dynalite.endpoint();
    let body = refused_unsigned(&endpoint).expect("an answer");
    assert!(
        body.contains("MissingAuthenticationTokenException")
            || body.contains("IncompleteSignatureException"),
        "{body}"
    );
    dynalite.restart();
    assert_eq!(refused_unsigned(&endpoint), Some(body));
    drop(dynalite);
    assert_eq!(
        refused_unsigned(&endpoint),
        None,
        "still listening after drop"
    );
}
