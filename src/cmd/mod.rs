//! One module per `vswitch` subcommand.
pub mod fdb;
pub mod flows;
pub mod stats;
