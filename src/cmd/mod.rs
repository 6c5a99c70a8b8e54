//! One module per `vswitch` subcommand.
pub mod iscsi;
