//! One module per `vswitch` subcommand.
pub mod blk;
