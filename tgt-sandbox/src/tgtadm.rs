//! `tgtadm` on one tgtd's management channel: each method is one command,
//! its error the tool's stderr.

use std::path::Path;
use std::process::Command;

use crate::TID;

/// The management channel of one tgtd (`tgtadm -C N --lld iscsi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tgtadm {
    control: u16,
}

impl Tgtadm {
    /// The tgtd listening on management channel `control`.
    pub fn new(control: u16) -> Tgtadm {
        Tgtadm { control }
    }

    /// The management channel number.
    pub fn control(&self) -> u16 {
        self.control
    }

    /// Runs `tgtadm -C N --lld iscsi ARGS`; the error names the arguments
    /// and carries the tool's stderr.
    pub fn run(&self, args: &[&str]) -> Result<(), String> {
        let o = Command::new("tgtadm")
            .args(["-C", &self.control.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .map_err(|e| format!("tgtadm (Debian package `tgt`): {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tgtadm {args:?} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    }

    /// Whether tgtd answers on its channel (`--mode target --op show`).
    pub fn ready(&self) -> bool {
        self.run(&["--mode", "target", "--op", "show"]).is_ok()
    }

    /// Creates target 1 named `iqn`.
    pub fn new_target(&self, iqn: &str) -> Result<(), String> {
        self.run(&[
            "--mode",
            "target",
            "--op",
            "new",
            "--tid",
            TID,
            "--targetname",
            iqn,
        ])
    }

    /// Adds LUN `lun` to target 1, backed by `backing` (a file, or
    /// `/dev/null` with `bstype` `null`; tgtd's default backing store when
    /// `bstype` is `None`).
    pub fn new_lun(&self, lun: u32, backing: &Path, bstype: Option<&str>) -> Result<(), String> {
        let lun = lun.to_string();
        let backing = backing.to_string_lossy();
        let mut args = vec!["--mode", "logicalunit", "--op", "new", "--tid", TID];
        args.extend(["--lun", &lun]);
        if let Some(b) = bstype {
            args.extend(["--bstype", b]);
        }
        args.extend(["-b", &backing]);
        self.run(&args)
    }

    /// Lets every initiator address log in to target 1.
    pub fn bind_all(&self) -> Result<(), String> {
        self.run(&[
            "--mode", "target", "--op", "bind", "--tid", TID, "-I", "ALL",
        ])
    }

    /// Target 1 named `iqn` with `backing` as LUN 1, open to every
    /// initiator: what every user of this crate starts with.
    pub fn export_lun(&self, iqn: &str, backing: &Path) -> Result<(), String> {
        self.new_target(iqn)?;
        self.new_lun(1, backing, None)?;
        self.bind_all()
    }

    /// Creates a CHAP account.
    pub fn new_account(&self, user: &str, secret: &str) -> Result<(), String> {
        self.run(&[
            "--mode",
            "account",
            "--op",
            "new",
            "--user",
            user,
            "--password",
            secret,
        ])
    }

    /// Binds account `user` to target 1: the initiator must prove it
    /// (one-way CHAP), or, `outgoing`, the target proves itself with it
    /// (mutual CHAP; RFC 7143 §12.1.3).
    pub fn bind_account(&self, user: &str, outgoing: bool) -> Result<(), String> {
        let mut args = vec![
            "--mode", "account", "--op", "bind", "--tid", TID, "--user", user,
        ];
        if outgoing {
            args.push("--outgoing");
        }
        self.run(&args)
    }

    /// Sets parameters of LUN `lun` (e.g. `thin_provisioning=1`).
    pub fn update_lun(&self, lun: u32, params: &str) -> Result<(), String> {
        let lun = lun.to_string();
        self.run(&[
            "--mode",
            "logicalunit",
            "--op",
            "update",
            "--tid",
            TID,
            "--lun",
            &lun,
            "--params",
            params,
        ])
    }

    /// Sets a target-wide parameter of target 1 (an iSCSI key such as
    /// `HeaderDigest`, or tgtd's `RedirectAddress`).
    pub fn update_target(&self, name: &str, value: &str) -> Result<(), String> {
        self.run(&[
            "--mode", "target", "--op", "update", "--tid", TID, "--name", name, "--value", value,
        ])
    }
}
