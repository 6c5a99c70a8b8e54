//! One module per `vswitch` subcommand.
pub mod accel;
