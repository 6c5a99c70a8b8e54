//! `vswitch iscsi ...`: the user-mode iSCSI initiator from the command line.

// The doc comments of the clap types below are `--help` text, where
// `[...]` marks an optional part, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::{Args, Subcommand};
use iscsi_initiator::chap::Chap;
use iscsi_initiator::device::{self, BlockDevice};
use iscsi_initiator::transport::Connection;
use iscsi_initiator::workload::{self, Workload};
use iscsi_initiator::SessionConfig;
use std::io::{Read, Write};
use std::time::Duration;

/// iSCSI initiator commands.
#[derive(Subcommand)]
pub enum IscsiCommand {
    /// List the targets a portal offers (SendTargets discovery).
    Discover {
        /// Portal, host[:port] (default port 3260).
        portal: String,
        #[command(flatten)]
        opts: Options,
    },
    /// Print the standard INQUIRY data and the VPD pages of a LUN.
    Inquiry(Target),
    /// Print the capacity and block size of a LUN.
    Capacity(Target),
    /// Read bytes from a LUN into a file.
    Read {
        #[command(flatten)]
        target: Target,
        /// Byte offset (multiple of the block size).
        #[arg(long)]
        offset: u64,
        /// Bytes to read (multiple of the block size).
        #[arg(long)]
        length: u64,
        /// Output file.
        #[arg(long)]
        out: String,
    },
    /// Write a file's bytes to a LUN.
    Write {
        #[command(flatten)]
        target: Target,
        /// Byte offset (multiple of the block size).
        #[arg(long)]
        offset: u64,
        /// Input file (its length must be a multiple of the block size).
        #[arg(long = "in")]
        input: String,
    },
    /// Random I/O benchmark: IOPS, MB/s, mean latency.
    Bench {
        #[command(flatten)]
        target: Target,
        /// `read` or `write`.
        #[arg(long, default_value = "read")]
        rw: String,
        /// Bytes per I/O.
        #[arg(long, default_value_t = 4096)]
        bs: u32,
        /// Queue depth.
        #[arg(long, default_value_t = 32)]
        qd: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

/// Options shared by all subcommands.
#[derive(Args, Clone)]
pub struct Options {
    /// Our initiator name.
    #[arg(long, default_value = "iqn.2026-01.dev.vswitch:initiator")]
    initiator_name: String,
    /// Offer HeaderDigest=CRC32C.
    #[arg(long)]
    header_digest: bool,
    /// Offer DataDigest=CRC32C.
    #[arg(long)]
    data_digest: bool,
    /// CHAP user name (with --chap-secret).
    #[arg(long)]
    chap_user: Option<String>,
    /// CHAP secret.
    #[arg(long)]
    chap_secret: Option<String>,
    /// Mutual CHAP: the name the target answers our challenge with (with
    /// --chap-target-secret; tgtd: `tgtadm --op bind --mode account --outgoing`).
    #[arg(long)]
    chap_target_user: Option<String>,
    /// Mutual CHAP: the secret the target must prove.
    #[arg(long)]
    chap_target_secret: Option<String>,
}

/// A LUN of a target on a portal.
#[derive(Args, Clone)]
pub struct Target {
    /// Portal, host[:port] (default port 3260); several, comma-separated,
    /// for failover (the next one is used when a connection fails).
    portal: String,
    /// Target IQN.
    target_iqn: String,
    /// LUN number.
    lun: u16,
    #[command(flatten)]
    opts: Options,
}

fn portal(p: &str) -> String {
    if p.starts_with('[') || p.matches(':').count() == 1 {
        if p.starts_with('[') && !p.contains("]:") {
            return format!("{p}:3260");
        }
        p.to_owned()
    } else if p.contains(':') {
        format!("[{p}]:3260")
    } else {
        format!("{p}:3260")
    }
}

fn config(t: &Target) -> Result<SessionConfig, String> {
    let mut c = SessionConfig::new(&t.opts.initiator_name, Some(&t.target_iqn));
    c.proposal.header_digest = t.opts.header_digest;
    c.proposal.data_digest = t.opts.data_digest;
    let mutual = match (&t.opts.chap_target_user, &t.opts.chap_target_secret) {
        (Some(u), Some(s)) => Some((u.clone(), s.clone())),
        (None, None) => None,
        _ => return Err("--chap-target-user and --chap-target-secret go together".into()),
    };
    c.chap = match (&t.opts.chap_user, &t.opts.chap_secret) {
        (Some(u), Some(s)) => Some(Chap {
            user: u.clone(),
            secret: s.clone(),
            mutual,
        }),
        (None, None) if mutual.is_none() => None,
        (None, None) => return Err("mutual CHAP needs --chap-user and --chap-secret".into()),
        _ => return Err("--chap-user and --chap-secret go together".into()),
    };
    Ok(c)
}

fn connect(t: &Target) -> Result<Connection, String> {
    let portals =
        iscsi_initiator::portals::parse_portal_list(&t.portal).map_err(|e| e.to_string())?;
    let several = portals.len() > 1;
    let mut c = Connection::login_portals(portals, config(t)?)
        .map_err(|e| format!("login to {} at {}: {e}", t.target_iqn, t.portal))?;
    // With several portals a lost connection moves to the next one.
    c.reconnect.enabled = several;
    Ok(c)
}

fn open(t: &Target) -> Result<BlockDevice, String> {
    BlockDevice::open(connect(t)?, t.lun).map_err(|e| format!("LUN {}: {e}", t.lun))
}

/// Runs an `iscsi` subcommand.
pub fn run(cmd: IscsiCommand) -> Result<(), String> {
    match cmd {
        IscsiCommand::Discover { portal: p, opts } => discover(&p, &opts),
        IscsiCommand::Inquiry(t) => inquiry(&t),
        IscsiCommand::Capacity(t) => capacity(&t),
        IscsiCommand::Read {
            target,
            offset,
            length,
            out,
        } => read(&target, offset, length, &out),
        IscsiCommand::Write {
            target,
            offset,
            input,
        } => write(&target, offset, &input),
        IscsiCommand::Bench {
            target,
            rw,
            bs,
            qd,
            seconds,
        } => bench(&target, &rw, bs, qd, seconds),
    }
}

/// `iscsi discover`: the targets a SendTargets discovery lists, one
/// `address name` line each.
fn discover(p: &str, opts: &Options) -> Result<(), String> {
    let targets = Connection::discover(&portal(p), &opts.initiator_name)
        .map_err(|e| format!("discovery at {p}: {e}"))?;
    for t in targets {
        for a in &t.addresses {
            println!("{a} {}", t.name);
        }
        if t.addresses.is_empty() {
            println!("- {}", t.name);
        }
    }
    Ok(())
}

/// `iscsi inquiry`: the LU's standard INQUIRY data and block limits.
fn inquiry(t: &Target) -> Result<(), String> {
    let mut c = connect(t)?;
    device::test_unit_ready(&mut c, t.lun).map_err(|e| e.to_string())?;
    let i = device::inquiry(&mut c, t.lun).map_err(|e| e.to_string())?;
    println!(
        "vendor: {}\nproduct: {}\nrevision: {}",
        i.vendor, i.product, i.revision
    );
    println!(
        "device type: {:#04x}\nversion: {}",
        i.device_type, i.version
    );
    let dev = BlockDevice::open(c, t.lun).map_err(|e| e.to_string())?;
    let g = dev.geometry();
    println!(
        "block limits: max transfer {} blocks, optimal {} blocks, max unmap {} blocks",
        g.limits.max_transfer_blocks, g.limits.optimal_transfer_blocks, g.limits.max_unmap_blocks
    );
    println!(
        "provisioning: unmap {}, write same(16) unmap {}",
        g.provisioning.unmap, g.provisioning.write_same16_unmap
    );
    dev.into_connection().logout().map_err(|e| e.to_string())
}

/// `iscsi capacity`: READ CAPACITY.
fn capacity(t: &Target) -> Result<(), String> {
    let dev = open(t)?;
    let c = dev.geometry().capacity;
    println!(
        "{} bytes ({} blocks of {} bytes)",
        c.bytes(),
        c.blocks,
        c.block_size
    );
    dev.into_connection().logout().map_err(|e| e.to_string())
}

/// `iscsi read`: `length` bytes at `offset` into the file `out`, 8 MiB per
/// command.
fn read(target: &Target, offset: u64, length: u64, out: &str) -> Result<(), String> {
    let mut dev = open(target)?;
    let mut f = std::fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
    let chunk = 8u64 << 20;
    let mut buf = Vec::new();
    let mut at = 0;
    while at < length {
        let n = chunk.min(length - at);
        buf.resize(n as usize, 0);
        dev.read_at(offset + at, &mut buf)
            .map_err(|e| e.to_string())?;
        f.write_all(&buf).map_err(|e| format!("{out}: {e}"))?;
        at += n;
    }
    dev.into_connection().logout().map_err(|e| e.to_string())
}

/// `iscsi write`: the file `input` at `offset`, 8 MiB per command, then
/// SYNCHRONIZE CACHE.
fn write(target: &Target, offset: u64, input: &str) -> Result<(), String> {
    let mut dev = open(target)?;
    let mut f = std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?;
    let mut buf = vec![0u8; 8 << 20];
    let mut at = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).map_err(|e| format!("{input}: {e}"))? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        dev.write_at(offset + at, &buf[..n])
            .map_err(|e| e.to_string())?;
        at += n as u64;
    }
    dev.flush().map_err(|e| e.to_string())?;
    dev.into_connection().logout().map_err(|e| e.to_string())
}

/// `iscsi bench`: a read or write workload at queue depth `qd` for
/// `seconds`; prints IOPS, throughput and mean latency.
fn bench(target: &Target, rw: &str, bs: u32, qd: usize, seconds: u64) -> Result<(), String> {
    let write = match rw {
        "read" => false,
        "write" => true,
        o => return Err(format!("--rw must be read or write, not {o:?}")),
    };
    let mut dev = open(target)?;
    let g = *dev.geometry();
    if bs == 0 || !bs.is_multiple_of(g.capacity.block_size) {
        return Err(format!(
            "--bs {bs} is not a multiple of the {}-byte block size",
            g.capacity.block_size
        ));
    }
    let w = Workload {
        lun: target.lun,
        write,
        io_size: bs,
        queue_depth: qd.max(1),
        duration: Duration::from_secs(seconds),
        block_size: g.capacity.block_size,
        blocks: g.capacity.blocks,
        seed: 42,
    };
    let mut total_ns = 0u128;
    let o = workload::run(dev.connection(), &w, |ns| total_ns += ns as u128)
        .map_err(|e| e.to_string())?;
    let secs = o.elapsed.as_secs_f64();
    println!(
        "{rw} bs={bs} qd={qd}: {:.0} IOPS, {:.1} MB/s, mean latency {:.1} us",
        o.ios as f64 / secs,
        o.ios as f64 * bs as f64 / secs / 1e6,
        total_ns as f64 / o.ios.max(1) as f64 / 1e3
    );
    dev.into_connection().logout().map_err(|e| e.to_string())
}
