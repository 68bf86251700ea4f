//! Decoding and encoding of the i386chat envelope, including every malformed shape.

use super::*;
use crate::close::CloseCode;

fn decode(text: &str) -> Result<Op<'_>, DecodeError> {
    I386.decode(text)
}

#[test]
fn decodes_each_client_function() {
    assert!(matches!(
        decode(r#"{"f":110,"cnf":{"token":"t"}}"#),
        Ok(Op::Identify(_))
    ));
    assert!(matches!(decode(r#"{"f":120}"#), Ok(Op::Heartbeat(None))));
    match decode(r#"{"f":130,"cnf":{"content":"hi"},"s":21,"t":"MESSAGE_CREATE"}"#) {
        Ok(Op::Dispatch { event, data }) => {
            assert_eq!(event, "MESSAGE_CREATE");
            assert_eq!(data.map(|d| d.get()), Some(r#"{"content":"hi"}"#));
        }
        other => panic!("{other:?}"),
    }
    // The seed's own example names the event `e`.
    assert!(matches!(
        decode(r#"{"f":130,"cnf":{},"s":1,"e":"START_TYPING"}"#),
        Ok(Op::Dispatch { .. })
    ));
    match decode(r#"{"f":110,"cnf":{"token":"t","session_id":9683494578353,"s":4}}"#) {
        Ok(Op::Resume { session, seq, .. }) => assert_eq!((session.get(), seq), (9683494578353, 4)),
        other => panic!("{other:?}"),
    }
    match decode(r#"{"f":110,"cnf":{"token":"t","session_id":"18446744073709551615"},"s":7}"#) {
        Ok(Op::Resume { session, seq, .. }) => assert_eq!((session.get(), seq), (u64::MAX, 7)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_and_unknown() {
    for bad in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"f":"110"}"#,
        r#"{"f":110}"#,
        r#"{"f":130,"cnf":{}}"#,
        r#"{"f":110,"cnf":"token"}"#,
        r#"{"f":110,"cnf":{"session_id":-1}}"#,
        r#"{"f":1e400}"#,
        r#"{"f":120,"t":5}"#,
    ] {
        assert!(
            matches!(decode(bad), Err(DecodeError::Malformed(_))),
            "{bad}"
        );
    }
    for op in [
        r#"{"f":100}"#,
        r#"{"f":140}"#,
        r#"{"f":150}"#,
        r#"{"f":999}"#,
        r#"{"f":-1}"#,
    ] {
        assert!(matches!(decode(op), Err(DecodeError::UnknownOp(_))), "{op}");
    }
}

#[test]
fn encodes_server_payloads_as_json() {
    let mut out = String::new();
    I386.hello(&mut out, Millis(20_000));
    assert_eq!(out, r#"{"f":100,"cnf":{"hb_int":20000}}"#);
    out.clear();
    I386.ready(
        &mut out,
        &Ready {
            session: SessionId::new(42),
            resumed: false,
            extra: r#""enc_key":"k""#,
        },
    );
    assert_eq!(
        out,
        r#"{"f":140,"cnf":{"v":6,"session_id":42,"enc_key":"k"}}"#
    );
    out.clear();
    I386.dispatch_tail(&mut out, "MESSAGE_CREATE", r#"{"a":1}"#);
    let whole = format!("{{\"f\":130,\"s\":7{out}");
    let v: serde_json::Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(v["s"], 7);
    assert_eq!(v["t"], "MESSAGE_CREATE");
    let a = I386.answer(&GatewayError::AuthenticationFailed);
    assert_eq!(
        a.payload.as_deref(),
        Some(r#"{"f":150,"cnf":{"c":4004,"d":true}}"#)
    );
    assert_eq!(a.close.map(|c| c.0), Some(CloseCode(4004)));
    let a = I386.answer(&GatewayError::InvalidSession);
    assert_eq!(
        a.payload.as_deref(),
        Some(r#"{"f":150,"cnf":{"c":4006,"d":false}}"#)
    );
    assert!(a.close.is_none());
}
