//! RFC 7047 §4: JSON-RPC 1.0 messages, and their decoding from a byte stream.
//!
//! Messages are JSON objects written back to back; RFC 7047 does not promise
//! any delimiter between them, so the stream is decoded with serde_json's
//! streaming deserializer, which needs none.

use std::io::Read;

use serde_json::{json, Value};

use crate::Error;

/// One JSON-RPC 1.0 message (RFC 7047 §4).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: `{"method", "params", "id"}` with a non-null id.
    Request {
        /// The request id, echoed by the reply.
        id: Value,
        /// Method name (`transact`, `echo`, ...).
        method: String,
        /// Parameters (an array).
        params: Value,
    },
    /// A notification: a request whose id is `null`; no reply is sent.
    Notification {
        /// Method name (`update`, `locked`, ...).
        method: String,
        /// Parameters (an array).
        params: Value,
    },
    /// A reply: `{"result", "error", "id"}`; exactly one of result and error is non-null.
    Response {
        /// The id of the request answered.
        id: Value,
        /// The result, `null` on error.
        result: Value,
        /// The error, `null` on success.
        error: Value,
    },
}

impl Message {
    /// Classifies a decoded JSON value; objects that are none of the three
    /// shapes are a [`Error::Protocol`].
    pub fn parse(v: Value) -> Result<Message, Error> {
        let Value::Object(mut o) = v else {
            return Err(Error::Protocol(format!(
                "message is not a JSON object: {v}"
            )));
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(method) = o.remove("method") {
            let Value::String(method) = method else {
                return Err(Error::Protocol(format!("method is not a string: {method}")));
            };
            let params = o.remove("params").unwrap_or(Value::Array(Vec::new()));
            if id.is_null() {
                Ok(Message::Notification { method, params })
            } else {
                Ok(Message::Request { id, method, params })
            }
        } else if o.contains_key("result") || o.contains_key("error") {
            Ok(Message::Response {
                id,
                result: o.remove("result").unwrap_or(Value::Null),
                error: o.remove("error").unwrap_or(Value::Null),
            })
        } else {
            Err(Error::Protocol(format!(
                "object is neither request nor reply: {}",
                Value::Object(o)
            )))
        }
    }

    /// The message as JSON, ready to write on the stream.
    pub fn to_json(&self) -> Value {
        match self {
            Message::Request { id, method, params } => {
                json!({"id": id, "method": method, "params": params})
            }
            Message::Notification { method, params } => {
                json!({"id": null, "method": method, "params": params})
            }
            Message::Response { id, result, error } => {
                json!({"id": id, "result": result, "error": error})
            }
        }
    }
}

/// Decodes concatenated messages from `r` until end of stream or the first error.
pub fn decode_stream<R: Read>(r: R) -> impl Iterator<Item = Result<Message, Error>> {
    serde_json::Deserializer::from_reader(r)
        .into_iter::<Value>()
        .map(|v| match v {
            Ok(v) => Message::parse(v),
            Err(e) if e.is_io() => Err(Error::Io(e.into())),
            Err(e) => Err(Error::Protocol(format!("bad JSON: {e}"))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_concatenated_messages() {
        // As ovsdb-server writes them: no delimiter between objects.
        let wire = br#"{"id":"echo","method":"echo","params":[]}{"id":null,"method":"update","params":["m",{}]}{"id":1,"result":["Open_vSwitch"],"error":null}"#;
        let msgs: Vec<_> = decode_stream(&wire[..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::Request {
                    id: json!("echo"),
                    method: "echo".into(),
                    params: json!([])
                },
                Message::Notification {
                    method: "update".into(),
                    params: json!(["m", {}])
                },
                Message::Response {
                    id: json!(1),
                    result: json!(["Open_vSwitch"]),
                    error: Value::Null
                },
            ]
        );
    }

    #[test]
    fn parse_split_reads() {
        // A reader that hands out one byte at a time still yields whole messages.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let wire =
            b"{\"id\":7,\"result\":{},\"error\":null}\n{\"id\":8,\"result\":null,\"error\":\"x\"}";
        let msgs: Vec<_> = decode_stream(Trickle(wire))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs.len(), 2);
    }

    #[test]
    fn parse_bad_messages() {
        assert!(matches!(
            Message::parse(json!([1])),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            Message::parse(json!({"method": 3, "id": 1})),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            Message::parse(json!({"id": 1})),
            Err(Error::Protocol(_))
        ));
        let mut it = decode_stream(&b"{\"id\":1,\"result\":[}"[..]);
        assert!(matches!(it.next(), Some(Err(Error::Protocol(_)))));
    }

    #[test]
    fn emit_roundtrip() {
        for m in [
            Message::Request {
                id: json!(1),
                method: "transact".into(),
                params: json!(["Open_vSwitch"]),
            },
            Message::Notification {
                method: "update".into(),
                params: json!([null, {}]),
            },
            Message::Response {
                id: json!("echo"),
                result: json!([]),
                error: Value::Null,
            },
        ] {
            assert_eq!(Message::parse(m.to_json()).unwrap(), m);
        }
    }
}
