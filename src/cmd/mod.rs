//! One module per `vswitch` subcommand.

pub mod accel;
pub mod blk;
pub mod ct;
pub mod demo;
pub mod fdb;
pub mod flows;
pub mod iscsi;
pub mod ports;
pub mod rpc;
pub mod run;
pub mod stats;
