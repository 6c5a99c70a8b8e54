//! One JSON-RPC 2.0 request object, checked the way SPDK's
//! `parse_single_request` (lib/jsonrpc/jsonrpc_server.c) checks it.
//!
//! JSON-RPC 2.0 §4: `jsonrpc` MUST be exactly "2.0", `method` a string,
//! `params` (optional) a structured value (array or object), `id`
//! (optional) a string, number or null; a request without `id` is a
//! notification and gets no response. Like SPDK (whose object decoder has
//! no slot for them) we refuse any other member as an invalid request.

use serde_json::{Map, Value};

use crate::error::RpcError;

/// A well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `id`: `None` for a notification, else a string, number or null.
    pub id: Option<Value>,
    /// `method`.
    pub method: String,
    /// `params`: an object or an array, if given.
    pub params: Option<Value>,
}

/// Longest `id` string SPDK copies (`SPDK_JSONRPC_ID_MAX_LEN`).
pub const ID_MAX_LEN: usize = 128;

impl Request {
    /// Checks one request object. On error, the `id` to answer with (the
    /// request's own if it was usable, else null) comes along.
    pub fn from_value(v: Value) -> Result<Request, (Value, RpcError)> {
        let Value::Object(mut obj) = v else {
            return Err((Value::Null, RpcError::invalid_request()));
        };
        let id = obj.remove("id");
        let answer_id = match &id {
            Some(i @ (Value::String(_) | Value::Number(_))) => i.clone(),
            _ => Value::Null,
        };
        let bad = |_| (answer_id.clone(), RpcError::invalid_request());
        check(&mut obj, &id).map_err(bad)?;
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m,
            _ => return Err(bad(())),
        };
        Ok(Request {
            id,
            method,
            params: obj.remove("params"),
        })
    }
}

fn check(obj: &mut Map<String, Value>, id: &Option<Value>) -> Result<(), ()> {
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(());
    }
    obj.remove("jsonrpc");
    match id {
        None | Some(Value::Null | Value::Number(_)) => {}
        Some(Value::String(s)) if s.len() <= ID_MAX_LEN => {}
        Some(_) => return Err(()),
    }
    if let Some(p) = obj.get("params") {
        if !p.is_object() && !p.is_array() {
            return Err(());
        }
    }
    if obj.keys().any(|k| k != "method" && k != "params") {
        return Err(());
    }
    Ok(())
}

/// A response object: `{"jsonrpc":"2.0","id":ID,"result":R}` or
/// `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M}}`.
pub fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), Value::from("2.0"));
    m.insert("id".into(), id);
    match result {
        Ok(r) => m.insert("result".into(), r),
        Err(e) => m.insert(
            "error".into(),
            serde_json::json!({"code": e.code, "message": e.message}),
        ),
    };
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_what_rpc_py_sends() {
        let r =
            Request::from_value(json!({"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1})).unwrap();
        assert_eq!(r.method, "bdev_get_bdevs");
        assert_eq!(r.id, Some(json!(1)));
        assert_eq!(r.params, None);
        let r =
            Request::from_value(json!({"jsonrpc":"2.0","method":"m","params":{"a":1}})).unwrap();
        assert_eq!(r.id, None);
    }

    #[test]
    fn refuses_malformed_requests() {
        for v in [
            json!([]),
            json!(7),
            json!({"method":"m","id":1}),
            json!({"jsonrpc":"1.0","method":"m","id":1}),
            json!({"jsonrpc":"2.0","method":5,"id":1}),
            json!({"jsonrpc":"2.0","method":"m","id":{}}),
            json!({"jsonrpc":"2.0","method":"m","id":1,"params":3}),
            json!({"jsonrpc":"2.0","method":"m","id":1,"extra":true}),
            json!({"jsonrpc":"2.0","method":"m","id":"x".repeat(200)}),
        ] {
            let (_, e) = Request::from_value(v.clone()).unwrap_err();
            assert_eq!(e.code, crate::error::INVALID_REQUEST, "{v}");
        }
        let (id, _) =
            Request::from_value(json!({"jsonrpc":"2.0","method":5,"id":"a"})).unwrap_err();
        assert_eq!(id, json!("a"));
    }
}
