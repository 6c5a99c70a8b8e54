//! One module per `vswitch` subcommand.
