//! One module per `vswitch` subcommand.

pub mod run;
