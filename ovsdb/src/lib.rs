//! OVSDB (RFC 7047) client for the `Open_vSwitch` database, and the
//! reconciler that turns its rows into a running datapath, so that `vswitch
//! run` can be configured with `ovs-vsctl` through a real `ovsdb-server`.
//!
//! Layers, bottom up (see README.md for the data flow):
//! - [`target`]: `unix:PATH` / `tcp:IP:PORT`;
//! - [`jsonrpc`]: JSON-RPC 1.0 messages decoded from a stream (RFC 7047 §4);
//! - [`client`]: a blocking client with a reader thread (replies by id, `echo`
//!   answered, notifications on a channel);
//! - [`datum`]: RFC 7047 §5.1 values and their Rust conversions;
//! - [`model`]: a typed snapshot of the tables we need, fed by `monitor`;
//! - [`desired`]: the netdev bridges and interfaces the snapshot asks for;
//! - [`datapath`]: the [`Datapath`] trait the switch process implements;
//! - [`reconcile`]: diffs desired against created, drives the datapath,
//!   computes the status write-back;
//! - [`service`]: the thread ([`spawn`]) that ties it together and reconnects.
//!
//! Dependencies are serde_json (and serde) only: JSON-RPC over a socket,
//! the streaming decode included, is little code on top of it.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod datapath;
pub mod datum;
pub mod desired;
mod error;
pub mod jsonrpc;
pub mod model;
pub mod reconcile;
pub mod service;
pub mod target;

pub use client::{Client, Notification};
pub use datapath::{BridgeConfig, Datapath, InterfaceConfig, InterfaceState};
pub use error::Error;
pub use service::{spawn, Handle, Options};
