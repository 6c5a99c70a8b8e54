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

/// Prints a control-socket reply as one JSON line (`--json` of the client
/// commands).
fn print_json(reply: &switch::control::Reply) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string(reply).map_err(|e| e.to_string())?
    );
    Ok(())
}
