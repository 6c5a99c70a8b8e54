//! `vswitch accel`: carve an accelerator into virtual functions and run jobs
//! on them.
//!
//! By default the commands talk to the emulated accelerator whose BAR files
//! are in `--dir` (default `/dev/shm/vswitch-accel`). The emulated device is
//! a separate, long-lived process started with `vswitch accel device`; the
//! other commands never start one implicitly (VFs must outlive a single
//! command), and say how to start it when none is running. With
//! `--pci DDDD:BB:DD.F` they drive a real device bound to vfio-pci instead.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vfio::accel::host::{default_dir, Accel};
use vfio::accel::job::{self, Job, JobOp};
use vfio::accel::{Device, Physical, VfRequest};

/// Arguments of `vswitch accel`.
#[derive(Args)]
pub struct AccelArgs {
    /// Directory of the emulated device's BAR files.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Drive a real device bound to vfio-pci at this PCI address instead.
    #[arg(long, global = true, conflicts_with = "dir")]
    pci: Option<String>,
    #[command(subcommand)]
    command: AccelCommand,
}

#[derive(Subcommand)]
enum AccelCommand {
    /// Run the emulated accelerator in the foreground (until SIGINT/SIGTERM).
    Device(DeviceArgs),
    /// Show the device's capabilities and free resources.
    Caps,
    /// Manage virtual functions.
    #[command(subcommand)]
    Vf(VfCommand),
    /// Run a job on a VF: crc32c, checksum, copy or fill.
    Run(RunArgs),
    /// Show or set the SR-IOV virtual functions of a real PCI device
    /// (`sriov_numvfs` in sysfs), optionally binding them to vfio-pci.
    Sriov {
        /// PCI address of the physical function.
        addr: String,
        /// Number of VFs to enable (0 disables them).
        #[arg(long)]
        numvfs: Option<u32>,
        /// Bind the enabled VFs to vfio-pci.
        #[arg(long)]
        bind_vfio: bool,
    },
}

#[derive(Args)]
struct DeviceArgs {
    /// Compute units (1..=64).
    #[arg(long, default_value_t = 8)]
    cu: u32,
    /// Device memory (e.g. 64M).
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    mem: u64,
    /// Work queues.
    #[arg(long, default_value_t = 64)]
    queues: u32,
    /// Virtual function slots.
    #[arg(long, default_value_t = 16)]
    vfs: u32,
    /// Bytes per second one compute unit processes (e.g. 512M).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    cu_rate: u64,
}

#[derive(Subcommand)]
enum VfCommand {
    /// Create a VF.
    Create {
        /// Compute units.
        #[arg(long)]
        cu: u32,
        /// Memory window size (multiple of 64K, e.g. 4M).
        #[arg(long, value_parser = parse_size)]
        mem: u64,
        /// Work queues.
        #[arg(long)]
        queues: u32,
        /// Interrupt vectors.
        #[arg(long, default_value_t = 1)]
        vectors: u32,
        /// Compute-unit quota in permille (1..=1000).
        #[arg(long)]
        quota: Option<u32>,
    },
    /// Destroy a VF.
    Destroy {
        /// VF number.
        id: u32,
    },
    /// List VFs.
    List,
    /// Set a VF's compute-unit quota in permille (1..=1000).
    Quota {
        /// VF number.
        id: u32,
        /// Permille of the VF's compute units.
        permille: u32,
    },
    /// Reset a VF (drops queued jobs, zeroes its memory and statistics).
    Reset {
        /// VF number.
        id: u32,
    },
}

#[derive(Args)]
struct RunArgs {
    /// VF number.
    vf: u32,
    /// Job: crc32c, checksum, copy or fill.
    job: String,
    /// Bytes to process (default: the whole window, half of it for copy).
    #[arg(long, value_parser = parse_size)]
    len: Option<u64>,
    /// Source offset in the VF's window (destination for fill).
    #[arg(long, default_value = "0", value_parser = parse_size)]
    offset: u64,
    /// Destination offset for copy (default: right after the source).
    #[arg(long, value_parser = parse_size)]
    dst: Option<u64>,
    /// Load this file at `offset` first (otherwise pseudo-random bytes from `--seed`).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Seed of the pseudo-random data written before the job.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Do not write data before the job (process what the window holds).
    #[arg(long)]
    no_fill: bool,
    /// Fill byte for the fill job.
    #[arg(long, default_value_t = 0)]
    byte: u8,
    /// Work queue (within the VF).
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// Repeat the job this many times and report throughput.
    #[arg(long, default_value_t = 1)]
    count: u32,
}

/// Parses a size such as `4096`, `64K`, `4M`, `1G` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches("iB").trim_end_matches('B');
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = if let Some(h) = num.strip_prefix("0x") {
        u64::from_str_radix(h, 16).map_err(|e| format!("bad size {s:?}: {e}"))?
    } else {
        num.parse().map_err(|e| format!("bad size {s:?}: {e}"))?
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

fn bind(args: &AccelArgs) -> Result<Accel, String> {
    if let Some(addr) = &args.pci {
        let bars = vfio::accel::vfio_bars::VfioBars::open(addr).map_err(|e| e.to_string())?;
        return Accel::open(Box::new(bars)).map_err(|e| format!("{addr}: {e}"));
    }
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    Accel::open_emulated(&dir).map_err(|e| e.to_string())
}

/// Runs `vswitch accel`.
pub fn run(args: AccelArgs) -> Result<(), String> {
    match &args.command {
        AccelCommand::Device(d) => device(&args, d),
        AccelCommand::Caps => {
            let a = bind(&args)?;
            let c = a.query_caps().map_err(|e| e.to_string())?;
            println!("compute units   {} (free mask {:#x})", c.cu, c.free_cu_mask);
            println!(
                "device memory   {} (free {}, granule {})",
                human(c.mem_size),
                human(c.free_mem),
                human(c.granule.into())
            );
            println!(
                "work queues     {} (ring of {} descriptors)",
                c.queues, c.ring_size
            );
            println!("doorbells       {}", c.doorbells);
            println!("irq vectors     {}", c.vectors);
            println!("max VFs         {}", c.max_vfs);
            println!("CU throughput   {}/s per compute unit", human(c.cu_rate));
            Ok(())
        }
        AccelCommand::Vf(v) => vf(&args, v),
        AccelCommand::Run(r) => run_job(&args, r),
        AccelCommand::Sriov {
            addr,
            numvfs,
            bind_vfio,
        } => sriov(addr, *numvfs, *bind_vfio),
    }
}

fn sriov(addr: &str, numvfs: Option<u32>, bind_vfio: bool) -> Result<(), String> {
    use vfio::pci::{PciAddress, Sysfs};
    let sys = Sysfs::default();
    let a = PciAddress::parse(addr).map_err(|e| e.to_string())?;
    let e = |e: vfio::pci::VfioError| e.to_string();
    if let Some(n) = numvfs {
        sys.set_sriov_numvfs(&a, n).map_err(e)?;
    }
    let vfs = sys.sriov_vfs(&a).map_err(e)?;
    println!(
        "{a}: {} of {} VFs enabled",
        vfs.len(),
        sys.sriov_totalvfs(&a).map_err(e)?
    );
    for v in &vfs {
        if bind_vfio {
            sys.bind_vfio_pci(v).map_err(e)?;
        }
        let driver = sys.driver(v).map_err(e)?;
        println!("  {v} driver {}", driver.as_deref().unwrap_or("-"));
    }
    Ok(())
}

fn device(args: &AccelArgs, d: &DeviceArgs) -> Result<(), String> {
    if args.pci.is_some() {
        return Err("`accel device` runs the emulated device; it takes --dir, not --pci".into());
    }
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    let phys = Physical {
        cu: d.cu,
        mem_size: d.mem,
        queues: d.queues,
        doorbells: d.queues,
        vectors: d.queues,
        max_vfs: d.vfs,
        cu_rate: d.cu_rate,
        ..Physical::default()
    };
    phys.validate()?;
    if Accel::open_emulated(&dir).is_ok() {
        return Err(format!(
            "an emulated accelerator is already running at {}",
            dir.display()
        ));
    }
    let stop = vfio::accel::device::stop_on_signals().map_err(|e| e.to_string())?;
    let mut dev = Device::create(&dir, phys).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!(
        "accel device: {} CUs, {} memory, {} queues, {} VFs; BARs in {} (stop with Ctrl-C)",
        d.cu,
        human(d.mem),
        d.queues,
        d.vfs,
        dir.display()
    );
    dev.run(stop);
    eprintln!("accel device: stopped");
    Ok(())
}

fn vf(args: &AccelArgs, v: &VfCommand) -> Result<(), String> {
    let a = bind(args)?;
    let e = |e: vfio::accel::AccelError| e.to_string();
    match *v {
        VfCommand::Create {
            cu,
            mem,
            queues,
            vectors,
            quota,
        } => {
            let mut req = VfRequest::new(cu, mem, queues);
            req.vectors = vectors;
            let info = a.create_vf(&req).map_err(e)?;
            if let Some(q) = quota {
                if let Err(err) = a.set_quota(info.vf, q) {
                    // Keep the command all-or-nothing.
                    let _ = a.destroy_vf(info.vf);
                    return Err(format!("quota: {err}"));
                }
            }
            println!("created vf {}", info.vf);
            print_vf(&a.query_vf(info.vf).map_err(e)?, true);
        }
        VfCommand::Destroy { id } => {
            a.destroy_vf(id).map_err(e)?;
            println!("destroyed vf {id}");
        }
        VfCommand::List => {
            let vfs = a.list_vfs().map_err(e)?;
            println!(
                "{:>3} {:>6} {:>10} {:>10} {:>10} {:>7} {:>6} {:>10} {:>12}",
                "vf", "cus", "cu_mask", "mem_base", "mem_size", "queues", "quota", "jobs", "bytes"
            );
            for i in &vfs {
                print_vf(i, false);
            }
        }
        VfCommand::Quota { id, permille } => {
            a.set_quota(id, permille).map_err(e)?;
            println!("vf {id} quota {permille}/1000");
        }
        VfCommand::Reset { id } => {
            a.reset_vf(id).map_err(e)?;
            println!("reset vf {id}");
        }
    }
    Ok(())
}

fn print_vf(i: &vfio::accel::VfInfo, long: bool) {
    if long {
        println!("  compute units  {} (mask {:#x})", i.cu_count(), i.cu_mask);
        println!(
            "  memory window  {} at {:#x}",
            human(i.mem_size),
            i.mem_base
        );
        println!("  work queues    {} from {}", i.queue_count, i.queue_base);
        println!(
            "  doorbells      {} from {}",
            i.doorbell_count, i.doorbell_base
        );
        println!("  irq vectors    {} from {}", i.vector_count, i.vector_base);
        println!("  quota          {}/1000", i.quota);
    } else {
        println!(
            "{:>3} {:>6} {:>#10x} {:>#10x} {:>10} {:>7} {:>6} {:>10} {:>12}",
            i.vf,
            i.cu_count(),
            i.cu_mask,
            i.mem_base,
            human(i.mem_size),
            format!("{}+{}", i.queue_base, i.queue_count),
            i.quota,
            i.jobs,
            i.bytes
        );
    }
}

fn run_job(args: &AccelArgs, r: &RunArgs) -> Result<(), String> {
    let op = JobOp::from_name(&r.job).ok_or_else(|| {
        format!(
            "unknown job {:?}: use crc32c, checksum, copy or fill",
            r.job
        )
    })?;
    if r.count == 0 {
        return Err("--count must be at least 1".into());
    }
    let a = bind(args)?;
    let mut vf = a.open_vf(r.vf).map_err(|e| format!("vf {}: {e}", r.vf))?;
    let win = vf.info().mem_size;
    let default_len = match op {
        JobOp::Copy => win / 2,
        _ => win.saturating_sub(r.offset),
    };
    let mut len = r.len.unwrap_or(default_len);
    // Prepare input data through the VF's own mapping (bounds-checked).
    let mut data = Vec::new();
    if matches!(op, JobOp::Crc32c | JobOp::Checksum | JobOp::Copy) && !r.no_fill {
        data = match &r.input {
            Some(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?,
            None => {
                let mut x = r.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            }
        };
        if r.len.is_none() && r.input.is_some() {
            len = data.len() as u64;
        }
        data.truncate(len as usize);
        vf.mem()
            .write_bytes(r.offset, &data)
            .map_err(|e| format!("input does not fit the VF's {} window: {e}", human(win)))?;
    }
    let dst = r.dst.unwrap_or(r.offset.saturating_add(len));
    let jb = match op {
        JobOp::Crc32c => Job::crc32c(r.offset, len),
        JobOp::Checksum => Job::checksum(r.offset, len),
        JobOp::Copy => Job::copy(r.offset, dst, len),
        JobOp::Fill => Job::fill(r.offset, len, r.byte),
    };
    let before = a.query_vf(r.vf).map_err(|e| e.to_string())?;
    let t = std::time::Instant::now();
    let mut result = 0;
    for _ in 0..r.count {
        result = vf
            .run(r.queue, &jb)
            .map_err(|e| format!("vf {} {}: {e}", r.vf, r.job))?;
    }
    let wall = t.elapsed();
    let after = a.query_vf(r.vf).map_err(|e| e.to_string())?;
    // Verify the device's answer against the host CPU.
    let verified = match op {
        JobOp::Crc32c | JobOp::Checksum => {
            if r.no_fill {
                data = vec![0; len as usize];
                vf.mem()
                    .read_bytes(r.offset, &mut data)
                    .map_err(|e| e.to_string())?;
            }
            let want = match op {
                JobOp::Crc32c => u64::from(job::crc32c(&data)),
                _ => job::checksum(0, &data),
            };
            if want != result {
                return Err(format!(
                    "device returned {result:#x}, host computed {want:#x}"
                ));
            }
            true
        }
        JobOp::Copy | JobOp::Fill => {
            let mut out = vec![0; len as usize];
            vf.mem()
                .read_bytes(if op == JobOp::Copy { dst } else { r.offset }, &mut out)
                .map_err(|e| e.to_string())?;
            let ok = match op {
                JobOp::Copy => r.no_fill || out == data,
                _ => out.iter().all(|&b| b == r.byte),
            };
            if !ok {
                return Err("destination does not hold the expected bytes".into());
            }
            true
        }
    };
    println!(
        "vf {} {} len {} result {:#x}{}",
        r.vf,
        r.job,
        len,
        result,
        if verified { " (verified on host)" } else { "" }
    );
    if r.count > 1 {
        let busy = after.busy_ns.saturating_sub(before.busy_ns).max(1);
        let bytes = u64::from(r.count) * len;
        println!(
            "{} jobs, {} bytes in {:.3} ms wall, {:.3} ms device time: {:.1} MiB/s",
            r.count,
            bytes,
            wall.as_secs_f64() * 1e3,
            busy as f64 / 1e6,
            bytes as f64 / wall.as_secs_f64() / (1 << 20) as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0x10000"), Ok(65536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert!(parse_size("").is_err());
    }
}
