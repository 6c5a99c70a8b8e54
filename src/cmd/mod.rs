//! One module per `vswitch` subcommand.

pub mod accel;
pub mod run;
