//! Arbitrary bytes from a client, cut into reads at an arbitrary point:
//! the stream decoder, the request checks, the batch split, every SPDK
//! method's params decoding and dispatch over a service that accepts
//! everything. Nothing may panic; every answer is a response object (or a
//! batch of them) with `result` or `error`, and after invalid JSON the
//! decoder stays broken (the server closes the connection).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc::decoder::{Decoder, Next};
use rpc::spdk::info::{BdevInfo, ConfigEntry, Controller, IoStat};
use rpc::spdk::params::{QosLimit, VhostBlkCreate};
use rpc::spdk::{BlockService, Create, Module, Resize};
use rpc::RpcError;
use serde_json::Value;

/// Accepts every call; remembers bdev names so deletes can fail.
#[derive(Default)]
struct Sink(Vec<String>);

impl BlockService for Sink {
    fn create_bdev(&mut self, req: Create) -> Result<String, RpcError> {
        let name = format!("{req:?}").len().to_string();
        self.0.push(name.clone());
        Ok(name)
    }
    fn delete_bdev(&mut self, _: Module, name: &str) -> Result<(), RpcError> {
        let n = self.0.len();
        self.0.retain(|b| b != name);
        if n == self.0.len() {
            return Err(RpcError::errno(19, name));
        }
        Ok(())
    }
    fn resize_bdev(&mut self, _: Module, _: &str, _: Resize) -> Result<(), RpcError> {
        Ok(())
    }
    fn bdevs(&mut self, _: Option<&str>) -> Result<Vec<BdevInfo>, RpcError> {
        Ok(Vec::new())
    }
    fn iostat(&mut self, _: Option<&str>) -> Result<Vec<IoStat>, RpcError> {
        Ok(Vec::new())
    }
    fn set_qos(&mut self, _: QosLimit) -> Result<(), RpcError> {
        Ok(())
    }
    fn create_vhost_blk(&mut self, _: VhostBlkCreate) -> Result<(), RpcError> {
        Ok(())
    }
    fn delete_vhost(&mut self, _: &str) -> Result<(), RpcError> {
        Ok(())
    }
    fn controllers(&mut self, _: Option<&str>) -> Result<Vec<Controller>, RpcError> {
        Ok(Vec::new())
    }
    fn config(&mut self, _: &str) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

fn check_response(v: &Value) {
    let o = v.as_object().expect("a response is an object");
    assert_eq!(o["jsonrpc"], "2.0");
    assert!(o.contains_key("id"));
    assert!(o.contains_key("result") ^ o.contains_key("error"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize).min(data.len());
    let methods = rpc::spdk::table::<Sink>("0.0.0");
    let mut svc = Sink::default();
    let mut dec = Decoder::new();
    for part in [&data[..cut], &data[cut..]] {
        dec.push(part);
        loop {
            match dec.next_value() {
                Next::Incomplete => break,
                Next::Invalid => {
                    assert!(matches!(dec.next_value(), Next::Invalid));
                    return;
                }
                Next::Value(v) => match methods.process(&mut svc, v) {
                    Some(Value::Array(rs)) => rs.iter().for_each(check_response),
                    Some(r) => check_response(&r),
                    None => {}
                },
            }
        }
    }
    // A saved configuration is also client input.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rpc::spdk::config::load(&methods, &mut svc, text);
    }
});
