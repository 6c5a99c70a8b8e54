//! The method dispatch table and the sans-IO request processor.
//!
//! [`Methods`] maps method names to handlers over a service `S`. A typed
//! handler ([`Methods::add`]) gets its `params` decoded into a serde type
//! first: a missing required member, a member of the wrong type, or (for
//! types with `deny_unknown_fields`) an unknown member is answered with
//! -32602 and the decoder's words, before the handler runs.
//! [`Methods::process`] turns one received JSON value (a request or a
//! JSON-RPC 2.0 §6 batch) into the JSON value to send back, if any.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::RpcError;
use crate::request::{response, Request};

type Handler<S> = Box<dyn Fn(&mut S, Option<Value>) -> Result<Value, RpcError> + Send + Sync>;

/// A method table over a service `S`.
pub struct Methods<S> {
    table: Vec<(&'static str, Handler<S>)>,
}

impl<S> Default for Methods<S> {
    fn default() -> Self {
        Methods { table: Vec::new() }
    }
}

impl<S> std::fmt::Debug for Methods<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Decodes `params` into `P`. Absent params decode as an empty object (a
/// type whose members are all optional accepts that); positional (array)
/// params are refused, as SPDK's object decoders refuse them.
pub fn decode<P: DeserializeOwned>(params: Option<Value>) -> Result<P, RpcError> {
    let v = match params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params(
                "params must be an object (by-name parameters)",
            ))
        }
        Some(v) => v,
    };
    serde_json::from_value(v).map_err(RpcError::invalid_params)
}

impl<S> Methods<S> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method whose params decode into `P` and whose result
    /// serializes from `R`.
    pub fn add<P, R, F>(&mut self, name: &'static str, f: F) -> &mut Self
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(&mut S, P) -> Result<R, RpcError> + Send + Sync + 'static,
    {
        self.add_raw(name, move |s, params| {
            let p = decode::<P>(params)?;
            let r = f(s, p)?;
            serde_json::to_value(r).map_err(RpcError::internal)
        })
    }

    /// Adds a method that takes its params as they came.
    pub fn add_raw<F>(&mut self, name: &'static str, f: F) -> &mut Self
    where
        F: Fn(&mut S, Option<Value>) -> Result<Value, RpcError> + Send + Sync + 'static,
    {
        self.table.retain(|(n, _)| *n != name);
        self.table.push((name, Box::new(f)));
        self
    }

    /// The method names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.table.iter().map(|(n, _)| *n).collect()
    }

    /// Whether `name` is a method.
    pub fn has(&self, name: &str) -> bool {
        self.table.iter().any(|(n, _)| *n == name)
    }

    /// Calls `method` with `params`.
    pub fn call(&self, s: &mut S, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
        match self.table.iter().find(|(n, _)| *n == method) {
            Some((_, h)) => h(s, params),
            None => Err(RpcError::method_not_found(method)),
        }
    }

    /// Answers one received value: a request object, or a batch array
    /// (JSON-RPC 2.0 §6: an array of responses, none for notifications,
    /// an empty batch is one invalid-request error). `None`: nothing to
    /// send (notifications only).
    pub fn process(&self, s: &mut S, v: Value) -> Option<Value> {
        match v {
            Value::Array(items) if items.is_empty() => {
                Some(response(Value::Null, Err(RpcError::invalid_request())))
            }
            Value::Array(items) => {
                let out: Vec<Value> = items
                    .into_iter()
                    .filter_map(|i| self.process_one(s, i))
                    .collect();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            v => self.process_one(s, v),
        }
    }

    fn process_one(&self, s: &mut S, v: Value) -> Option<Value> {
        match Request::from_value(v) {
            Err((id, e)) => Some(response(id, Err(e))),
            Ok(r) => {
                let result = self.call(s, &r.method, r.params);
                // §4.1: a notification gets no response, not even an
                // error (SPDK answers errors with "id": null; we follow
                // the specification here, and rpc.py always sends an id).
                r.id.map(|id| response(id, result))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND};
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Add {
        a: i64,
        #[serde(default)]
        b: i64,
    }

    fn table() -> Methods<Vec<i64>> {
        let mut m = Methods::new();
        m.add("add", |log: &mut Vec<i64>, p: Add| {
            log.push(p.a + p.b);
            Ok(p.a + p.b)
        });
        m
    }

    fn call(v: Value) -> Value {
        table().process(&mut Vec::new(), v).unwrap()
    }

    #[test]
    fn typed_params_and_their_errors() {
        let ok = call(json!({"jsonrpc":"2.0","method":"add","id":1,"params":{"a":2,"b":3}}));
        assert_eq!(ok, json!({"jsonrpc":"2.0","id":1,"result":5}));
        for params in [
            json!({"b":1}),
            json!({"a":"x"}),
            json!({"a":1,"c":2}),
            json!([1, 2]),
        ] {
            let r = call(json!({"jsonrpc":"2.0","method":"add","id":"q","params":params}));
            assert_eq!(r["error"]["code"], INVALID_PARAMS, "{params}");
            assert_eq!(r["id"], "q");
        }
        let r = call(json!({"jsonrpc":"2.0","method":"nope","id":2}));
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
    }

    #[test]
    fn batches_and_notifications() {
        let mut log = Vec::new();
        let m = table();
        let r = m.process(
            &mut log,
            json!([
                {"jsonrpc":"2.0","method":"add","params":{"a":1}},
                {"jsonrpc":"2.0","method":"add","id":7,"params":{"a":2}},
                5
            ]),
        );
        assert_eq!(log, vec![1, 2]);
        let r = r.unwrap();
        assert_eq!(r[0]["result"], 2);
        assert_eq!(r[1]["error"]["code"], INVALID_REQUEST);
        assert!(m
            .process(
                &mut log,
                json!({"jsonrpc":"2.0","method":"add","params":{"a":1}})
            )
            .is_none());
        assert_eq!(call(json!([]))["error"]["code"], INVALID_REQUEST);
    }
}
