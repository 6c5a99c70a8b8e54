//! Arbitrary bytes from the OVSDB server: the stream decoder (RFC 7047 §4,
//! messages back to back), the monitor reply's and every `update`
//! notification's table-updates applied to the model (§4.1.5, §4.1.6), the desired configuration read from it,
//! and the reconciler driving a datapath that accepts everything, then
//! computing its write-back. Nothing may panic; a bad row is an error and
//! the good rows of the same update still apply.

#![no_main]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ovsdb::datapath::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};
use ovsdb::desired::Desired;
use ovsdb::jsonrpc::{decode_stream, Message};
use ovsdb::model::Model;
use ovsdb::reconcile::Reconciler;

/// Creates whatever it is asked to, numbering ports from 1.
#[derive(Default)]
struct Sink(AtomicU16);

impl Datapath for Sink {
    fn bridge_set(&self, _: &BridgeConfig) -> Result<(), String> {
        Ok(())
    }
    fn bridge_del(&self, _: &str) {}
    fn iface_add(&self, _: &str, iface: &InterfaceConfig) -> Result<u16, String> {
        if iface.kind == "fail" {
            return Err("refused".into());
        }
        Ok(self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1))
    }
    fn iface_del(&self, _: &str, _: &str, _: u16) -> Result<(), String> {
        Ok(())
    }
    fn iface_state(&self, _: &str, _: u16) -> Option<InterfaceState> {
        None
    }
    fn system_config(&self, other: &BTreeMap<String, String>) -> Vec<String> {
        other.keys().cloned().collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut model = Model::default();
    let mut rec = Reconciler::new(Arc::new(Sink::default()));
    for m in decode_stream(data) {
        let Ok(m) = m else {
            break;
        };
        // Round trip: what is written back parses to the same message.
        let back = Message::parse(m.to_json()).expect("a message's own JSON parses");
        assert_eq!(back, m);
        // The monitor reply's result and each `update`'s second parameter
        // are table-updates.
        let updates = match &m {
            Message::Response { result, .. } if result.is_object() => result,
            Message::Notification { method, params } if method == "update" => {
                match params.get(1) {
                    Some(u) => u,
                    None => continue,
                }
            }
            _ => continue,
        };
        let _ = model.apply(updates);
        let d = Desired::from_model(&model);
        let applied = rec.apply(&model);
        assert_eq!(applied.bridges.len(), d.bridges.len());
        let _ = rec.write_back(&model, &applied);
    }
});
