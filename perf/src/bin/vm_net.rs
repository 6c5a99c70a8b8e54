//! VM-to-VM switching through two vhost-user ports, against OVS-DPDK with
//! `dpdkvhostuserclient` ports in the same harness, one forwarding core
//! each.
//!
//! The "guests" are one `dpdk-testpmd` process with two virtio-user front
//! ends (`net_virtio_user0/1`, DPDK's virtio-net driver over vhost-user),
//! in `io` forwarding: whatever arrives on one is sent back on the other.
//! As QEMU does for OpenStack, the guests serve the vhost-user sockets
//! (`server=1`) and both switches connect as clients (vswitch `net_vhost`
//! `client=1`, OVS `dpdkvhostuserclient`); testpmd waits in its start-up
//! until a switch has connected to both.
//! It starts the loop with `--tx-first` (a burst of 64-byte UDP frames per
//! port), and the switch under test sends port 0 to port 1 and back:
//!
//! ```text
//!           testpmd (CPU 0)                          switch (one forwarding core, CPU 1)
//!  virtio_user0 ──vhost-user──► vhost port A ─► in_port=A → output:B ─► vhost port B ──► virtio_user1
//!        ▲                                                                                 │ io fwd
//!        └──────────── vhost port A ◄─ in_port=B → output:A ◄─ vhost port B ◄──────────────┘
//! ```
//!
//! The rate is what the switch delivers: the sum of both guest ports'
//! per-second Rx-pps as testpmd prints them, median after a warm-up second.
//!
//! `--tso`: TCP throughput with TSO between the two vhost ports (the guests
//! and both switches negotiate TSO and checksum offload; OVS with
//! `other_config:userspace-tso-enable=true`): testpmd replays a pcap of
//! 64 KiB TCP segments (`net_pcap`, `infinite_rx=1`) in its `csum` engine,
//! which hands them to virtio_user0 as TSO frames (`tso set`); the switch
//! forwards them to virtio_user1, whose received bytes per second are the
//! throughput (Gbps of TCP segments as the guest's stack would see them).
//! The receiving guest hands them on to a `net_vhost` port that takes TCP
//! checksum offload and drops them: it trusts the switch's partial
//! checksums as a Linux guest with `GUEST_CSUM` does. With
//! `--tso-sw-csum` it sends them to the pcap port instead, which has no
//! offload, so testpmd first checksums each 64 KiB segment in software:
//! the harness until 7 Dec 2026, where that loop took 80 % of the guests'
//! core and bounded both switches (each 40-60 % busy) at the same rate.
//!
//! ```text
//! cargo build --release --workspace && target/release/vm_net [--seconds 5] [--rounds 1] [--tso] [--floor]
//! ```
//!
//! Besides the delivered rate, each switch's own counters, read at the
//! start and the end of one window (3 s after the guests start, for
//! `--seconds`; vswitch: its Prometheus endpoint's worker packets and busy
//! cycles, OVS: `pmd-stats-clear` then `pmd-stats-show`), give the Mpps it
//! switched, its busy cycles per packet (polling rounds that received
//! packets), the Mpps per busy core and how busy its core was: a core well
//! below 100 % busy is not what bounds the delivered rate (the guests are).
//!
//! `--floor` adds a row without a switch: `dpdk-testpmd` io-forwarding
//! between two `net_vhost` client ports on CPU 1, with its
//! `--record-core-cycles` over the same window: what the vhost library
//! (and the PMD around it) costs per packet; and a row with vswitch's
//! patch panel (`--xconnect`, the same direct vhost calls, no flow table).
//!
//! Placement and rounds: the harness pins itself to CPU 0 first, so every
//! process and thread it starts runs there but the pollers (CPU 1); each
//! run is printed with what ran on CPU 1 besides its poller, the steal,
//! and the CPU 0-1 cache-line time before and after it (the hypervisor
//! moves the two vCPUs, which moves every rate on this path). Rounds
//! alternate vswitch and OVS (ABBA) and the ratios are the median and
//! quartiles of the rounds' pairs.
//!
//! `VM_NET_SHOW_LOG=1` prints each `vswitch run` log after its run (the
//! vhost-user negotiation, e.g. the guests' features, and the run summary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use perf::ovs::{self, Ovs, OvsPort};
use perf::report::Spread;
use perf::threads::{self, Placement, Snapshot};
use perf::{cleanup, proc, report};
use serde::Serialize;

#[derive(Parser, Clone)]
#[command(
    about = "VM-to-VM switching over vhost-user (testpmd virtio-user guests), vswitch vs OVS-DPDK, same run"
)]
struct Args {
    /// Seconds each switch is measured.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Rounds: each runs vswitch and OVS (in turns: vswitch first in even
    /// rounds, OVS first in odd ones) and makes one pair; every round is
    /// printed, the ratios are the median and quartiles of the pairs'.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Frames testpmd puts in flight per guest port (its burst size for
    /// `--tx-first`, at most 512).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=512))]
    in_flight: u32,
    /// Measure TCP throughput with TSO (64 KiB segments) instead of 64-byte
    /// frame rates.
    #[arg(long)]
    tso: bool,
    /// `--tso`: the receiving guest checksums every segment in software
    /// (the harness before 7 Dec 2026: its frames went on to a port
    /// without checksum offload), which bounds the rate by the guest's
    /// core rather than the switch's.
    #[arg(long)]
    tso_sw_csum: bool,
    /// Skip OVS (only vswitch).
    #[arg(long)]
    no_ovs: bool,
    /// Also measure the floors (64-byte mode): `dpdk-testpmd`
    /// io-forwarding between two `net_vhost` client ports on the switch's
    /// core (the vhost library and the PMD's burst functions, no switch),
    /// and vswitch's patch panel (`--xconnect`: its direct vhost calls, no
    /// flow table).
    #[arg(long)]
    floor: bool,
    /// Extra virtio-user devargs for both guests (the same for both
    /// switches), e.g. `mrg_rxbuf=0,in_order=1` or `packed_vq=1`.
    #[arg(long, default_value = "")]
    guest_opts: String,
    /// Another guest configuration measured after the main one, in the
    /// same run, with its own table (repeatable), e.g. `packed_vq=1`.
    #[arg(long, value_name = "OPTS")]
    also_guest_opts: Vec<String>,
    /// TSC cycles per second (measured at start, not a flag).
    #[arg(skip)]
    hz: f64,
}

#[derive(Serialize, Default, Clone)]
struct Side {
    /// Mpps (64-byte mode) or Gbps (TSO mode), median: what the guests
    /// received (delivered).
    rate: f64,
    samples: Vec<f64>,
    /// Mpps the switch itself received over the measured window (its own
    /// packet counter: vswitch's worker rx, OVS's PMD "packets received").
    switched: Option<f64>,
    /// The switch's own busy (processing) TSC cycles per packet received
    /// over the measured window: cycles of polling rounds that received
    /// packets over the packets (vswitch: its Prometheus counters; OVS:
    /// `pmd-stats-show`). `None` when the switch did not report it.
    busy_cycles_per_packet: Option<f64>,
    /// TSC rate / busy cycles per packet: the Mpps one fully busy core
    /// would switch (the per-core comparison when the guests, not the
    /// switch, bound the delivered rate).
    mpps_per_busy_core: Option<f64>,
    /// Share of the switch core busy over the measured window (busy
    /// cycles / window cycles): near 1 the switch core bounds the run,
    /// well below 1 the guests do.
    busy_share: Option<f64>,
    /// Packets per busy polling round over the window: the mean rx batch
    /// of a round that received any (vswitch's busy rounds, OVS's busy
    /// iterations); a starved generator shows here as small batches.
    pkts_per_busy_round: Option<f64>,
    /// What ran on the polling CPU over the window besides the poller,
    /// the poller's preemptions and the hypervisor's steal per CPU.
    placement: Option<Placement>,
    /// One-way cache-line time (ns) between the guests' CPU and the
    /// polling CPU just before and just after the run: where the
    /// hypervisor had placed the two vCPUs.
    cross_core_ns: Option<[f64; 2]>,
    /// Whether the switch and the guests had hugepages (`false`: EAL
    /// `--no-huge`, 4 KiB pages: slower for a reason the rates do not show).
    hugepages: [bool; 2],
}

/// A switch's own counters over the measured window: packets received,
/// busy TSC cycles and busy polling rounds (if it counts them) between
/// its start and end, `seconds` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    packets: u64,
    busy_cycles: u64,
    busy_rounds: Option<u64>,
    seconds: f64,
}

impl Side {
    /// Fills the per-busy-core figures from the switch's counters over
    /// window `w` at TSC rate `hz` (64-byte mode). Every figure comes
    /// from the same window, so the busy share cannot pass 100 % (the
    /// polling thread is pinned: its busy cycles are a part of the
    /// window's).
    fn with_window(mut self, w: Option<Window>, hz: f64) -> Side {
        let Some(w) = w.filter(|w| w.packets > 0 && w.busy_cycles > 0 && w.seconds > 0.0) else {
            return self;
        };
        let cpp = w.busy_cycles as f64 / w.packets as f64;
        self.switched = Some(w.packets as f64 / w.seconds / 1e6);
        self.busy_cycles_per_packet = Some(cpp);
        self.mpps_per_busy_core = Some(hz / cpp / 1e6);
        self.busy_share = Some(w.busy_cycles as f64 / (hz * w.seconds));
        self.pkts_per_busy_round = w
            .busy_rounds
            .filter(|&r| r > 0)
            .map(|r| w.packets as f64 / r as f64);
        self
    }

    /// The per-second delivered samples' range (min, max).
    fn sample_range(&self) -> Option<(f64, f64)> {
        Spread::of(&self.samples).map(|s| (s.min, s.max))
    }
}

/// The CPU the switch under test polls on (its one forwarding core).
const POLL_CPU: usize = 1;
/// Everything else: the guests, the switches' other threads, this harness.
const GUEST_CPU: usize = 0;

/// The one-way cache-line time between the two CPUs now (ns), about 10 ms
/// of round trips while nothing polls.
fn cross_core() -> f64 {
    threads::cross_core_ns(GUEST_CPU, POLL_CPU, GUEST_CPU, 20_000)
}

/// When the measured window opens after the guests start: after their
/// start-up (waiting for the switch's connections), the warm-up second
/// and the first upcalls.
const WINDOW_OPENS: Duration = Duration::from_secs(3);

/// A switch's counters: packets, busy cycles and busy rounds (if it
/// counts them), and when they were read (the end of the call that read
/// them: a command's work comes after its process start and connection).
#[derive(Debug, Clone, Copy)]
struct Counts {
    packets: u64,
    busy_cycles: u64,
    busy_rounds: Option<u64>,
    at: Instant,
}

impl Counts {
    /// The counts since `before`, read at `self.at`.
    fn since(self, before: Counts) -> Counts {
        Counts {
            packets: self.packets.saturating_sub(before.packets),
            busy_cycles: self.busy_cycles.saturating_sub(before.busy_cycles),
            busy_rounds: self
                .busy_rounds
                .zip(before.busy_rounds)
                .map(|(x, y)| x.saturating_sub(y)),
            at: self.at,
        }
    }
}

/// Runs the guests (as [`measure`]) while another thread takes the
/// switch's counters at the start and the end of the window (from
/// [`WINDOW_OPENS`] for `a.seconds`, before the guests stop): `open`
/// returns its state then (or `None`), `close` the counts since (the
/// window runs from `open`'s end to when `close` read them); and reads
/// where the threads of process `pid` (the switch) ran meanwhile.
fn measure_window<S: Send>(
    socks: [&Path; 2],
    tag: &str,
    a: &Args,
    pcap: Option<&Path>,
    pid: u32,
    open: impl FnOnce() -> Option<S> + Send,
    close: impl FnOnce(S) -> Option<Counts> + Send,
) -> Side {
    let (mut side, window, placement) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            std::thread::sleep(WINDOW_OPENS);
            let before = Snapshot::take(pid);
            let st = open();
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_secs(a.seconds));
            let counts = st.and_then(close);
            let placement = Placement::between(&before, &Snapshot::take(pid), POLL_CPU);
            let window = counts.map(|c| Window {
                packets: c.packets,
                busy_cycles: c.busy_cycles,
                busy_rounds: c.busy_rounds,
                seconds: c.at.saturating_duration_since(t0).as_secs_f64(),
            });
            (window, Some(placement))
        });
        let side = measure(socks, tag, a, pcap);
        let (w, p) = reader.join().unwrap_or((None, None));
        (side, w, p)
    });
    side.placement = placement;
    side.with_window(window, a.hz)
}

/// The TSC rate (cycles per second), measured against the monotonic clock.
fn tsc_hz() -> f64 {
    let (c0, t0) = (switch::stats::rdtsc(), Instant::now());
    std::thread::sleep(Duration::from_millis(200));
    switch::stats::rdtsc().wrapping_sub(c0) as f64 / t0.elapsed().as_secs_f64()
}

#[derive(Serialize)]
struct Result<'a> {
    mode: &'static str,
    /// The guests' extra virtio-user devargs (empty: the defaults).
    guest_opts: String,
    unit: &'static str,
    seconds: u64,
    vswitch: Side,
    ovs: Option<Side>,
    /// `--floor`: testpmd io between two `net_vhost` ports, no switch.
    floor: Option<Side>,
    /// `--floor`: vswitch's patch panel (`--xconnect`), no flow table.
    floor_xconnect: Option<Side>,
    /// Delivered rate, vswitch / OVS: the median of the rounds' pairs.
    ratio: Option<f64>,
    /// Mpps per busy core, vswitch / OVS (64-byte mode): the median of
    /// the rounds' pairs.
    ratio_per_busy_core: Option<f64>,
    /// The pairs' delivered ratios: median, quartiles, range.
    pairs_delivered: Option<Spread>,
    /// The pairs' per-busy-core ratios: median, quartiles, range.
    pairs_per_busy_core: Option<Spread>,
    /// The same over the pairs that kept one vCPU placement throughout.
    same_host_per_busy_core: Option<Spread>,
    /// Those pairs by placement (the ratio itself moves with it).
    by_placement: Vec<PlacementGroup>,
    /// Every run's figures, by row and round.
    rounds: &'a Rounds,
    /// TSC cycles per second on this machine.
    tsc_hz: f64,
    goal: f64,
}

/// 2 MiB pages the guests take (`-m 256`).
const GUEST_PAGES: u64 = 128;
/// 2 MiB pages each switch takes at start: OVS's `dpdk-socket-mem=512`,
/// and the same for vswitch and the testpmd floor (`--socket-mem 512`).
const SWITCH_PAGES: u64 = 256;

/// EAL memory of a switch (vswitch, the testpmd floor), the same as OVS's
/// (`--in-memory`, 512 MiB preallocated) once the previous run's pages
/// are back; `--no-huge` without hugepages. The flag: hugepages or not.
fn switch_memory() -> (Vec<String>, bool) {
    proc::wait_for_hugepages(SWITCH_PAGES + GUEST_PAGES, Duration::from_secs(5));
    let m = proc::eal_memory_args();
    if m.is_empty() {
        let mb = (SWITCH_PAGES * 2).to_string();
        (vec!["--in-memory".into(), "--socket-mem".into(), mb], true)
    } else {
        (m, false)
    }
}

/// Whether `cmd`'s EAL arguments ask for 4 KiB pages.
fn no_huge(cmd: &Command) -> bool {
    cmd.get_args().any(|a| a == "--no-huge")
}

/// TSO segment size (IPv4, TCP timestamps: 1500 - 20 - 32).
const MSS: u16 = 1448;
/// TCP payload bytes of each large segment replayed in `--tso`.
const TSO_PAYLOAD: usize = 65_000 - 14 - 20 - 20;

/// The two guests: one testpmd with virtio-user ports on `socks`.
fn testpmd(socks: [&Path; 2], tag: &str, a: &Args, pcap: Option<&Path>) -> Command {
    let mut c = Command::new("dpdk-testpmd");
    c.args([
        "--lcores",
        "0@0,1@0",
        "--no-pci",
        "--no-telemetry",
        "--log-level=*:warning",
        "--file-prefix",
        &format!("vmnet-tp-{tag}"),
    ]);
    // The switch holds its 256 pages by now; a page still held by the
    // previous run's program would send the guests to 4 KiB pages.
    proc::wait_for_hugepages(GUEST_PAGES + 128, Duration::from_secs(5));
    let mem = proc::eal_memory_args();
    if mem.is_empty() {
        // Hugepages: one file per memseg list, so the vhost-user memory
        // table (at most 8 regions) covers the guest's memory.
        c.args(["--single-file-segments", "-m", "256"]);
    } else {
        c.args(mem);
    }
    if let Some(p) = pcap {
        c.args([
            "--vdev",
            &format!("net_pcap0,rx_pcap={},infinite_rx=1", p.display()),
        ]);
    }
    // Rings of 256 in the TSO run: its 64 KiB buffers fill memory fast.
    let qs = if pcap.is_some() { 256 } else { 1024 };
    for (i, s) in socks.iter().enumerate() {
        c.args([
            "--vdev",
            &format!(
                "net_virtio_user{i},path={},server=1,queues=1,queue_size={qs}{}{}",
                s.display(),
                if a.guest_opts.is_empty() { "" } else { "," },
                a.guest_opts
            ),
        ]);
    }
    if pcap.is_some() && !a.tso_sw_csum {
        // Port 3, where the receiving guest hands its segments on: a
        // vhost port nobody connects to (its transmit drops them), which
        // takes TCP checksum offload, so the guest trusts the switch's
        // partial checksums as a Linux guest with GUEST_CSUM does.
        let sink = socks[1].with_extension("sink");
        c.args([
            "--vdev",
            &format!("net_vhost9,iface={},tso=1", sink.display()),
        ]);
    }
    c.arg("--");
    if pcap.is_some() {
        // Interactive: the TSO settings are commands (see `tso_commands`).
        c.args([
            "-i",
            if a.tso_sw_csum {
                "--port-topology=chained"
            } else {
                "--port-topology=paired"
            },
            // net_pcap's infinite_rx needs a whole frame per mbuf.
            "--mbuf-size=65535",
            "--total-num-mbufs=2048",
            "--rxd=256",
            "--txd=256",
            "--nb-cores=1",
        ]);
    } else {
        c.args([
            "--forward-mode=io",
            "--auto-start",
            "--tx-first",
            &format!("--burst={}", a.in_flight),
            "--stats-period",
            "1",
            "--nb-cores=1",
            "--total-num-mbufs=16384",
        ]);
    }
    c
}

/// testpmd commands of the TSO run: pcap port 0 → (csum engine, TSO on
/// port 1) → virtio_user0 → switch → virtio_user1 (port 2); port 2's
/// frames go on to port 3 (the vhost sink, TCP checksum offload: the
/// receiving guest trusts the switch's partial checksums) or, with
/// `--tso-sw-csum`, back to the pcap port (no tx file, no offload: the
/// guest checksums each segment in software first), which drop them.
fn tso_commands(a: &Args) -> String {
    let mut s = String::new();
    let sink = (!a.tso_sw_csum).then(|| "csum set tcp hw 3".to_string());
    for c in [
        "set fwd csum".to_string(),
        "port stop all".into(),
        "port config 2 rx_offload tcp_lro on".into(),
        // A guest that takes large segments takes partial checksums too
        // (VIRTIO 1.2 §5.1.3.1: GUEST_TSO4 requires GUEST_CSUM; Linux
        // offers both). Without it the driver negotiates GUEST_TSO4 alone
        // and vswitch, by the spec, cuts every segment in software.
        "port config 2 rx_offload tcp_cksum on".into(),
        "csum set ip hw 1".into(),
        "csum set tcp hw 1".into(),
        format!("tso set {MSS} 1"),
    ]
    .into_iter()
    .chain(sink)
    .chain([
        "port start all".into(),
        "start".into(),
        "clear port stats all".into(),
    ]) {
        s.push_str(&c);
        s.push('\n');
    }
    s
}

/// Per-second Rx-pps of every port in testpmd's `--stats-period` output,
/// summed per period (Mpps).
fn rx_pps_per_period(stdout: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut cur = 0.0;
    let mut seen = 0;
    for l in stdout.lines() {
        if let Some(n) = l
            .trim()
            .strip_prefix("Rx-pps:")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
        {
            cur += n;
            seen += 1;
            if seen == 2 {
                out.push(cur / 1e6);
                cur = 0.0;
                seen = 0;
            }
        }
    }
    out
}

/// `RX-bytes:` of port `port` in `show port stats` output.
fn rx_bytes(stdout: &str, port: u32) -> Option<u64> {
    let mut current = None;
    let mut last = None;
    for l in stdout.lines() {
        if let Some(rest) = l.split("NIC statistics for port").nth(1) {
            current = rest.split_whitespace().next().and_then(|p| p.parse().ok());
        }
        if current == Some(port) {
            if let Some(v) = l
                .split("RX-bytes:")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
            {
                last = Some(v);
            }
        }
    }
    last
}

/// The run's rate from its per-second samples: the seconds before the
/// guests' traffic started and the warm-up second dropped, the median of
/// the rest.
fn finish(samples: Vec<f64>) -> Side {
    let samples = report::steady_samples(samples, usize::MAX);
    Side {
        rate: report::median(&samples),
        samples,
        ..Side::default()
    }
}

/// Runs the guests on sockets `socks` (they serve them; the switch under
/// test, already started, connects) for `a.seconds` and returns the rate.
fn measure(socks: [&Path; 2], tag: &str, a: &Args, pcap: Option<&Path>) -> Side {
    for s in socks {
        let _ = std::fs::remove_file(s);
    }
    let cmd = testpmd(socks, tag, a, pcap);
    let guest_huge = !no_huge(&cmd);
    let mut side = if pcap.is_none() {
        // Start-up waits for the switch's connections (its reconnect
        // period is a second): the warm-up second drops the first rate.
        let r = proc::run_for(
            cmd,
            Duration::from_secs(a.seconds + 4),
            Duration::from_secs(10),
        )
        .expect("run dpdk-testpmd");
        let s = rx_pps_per_period(&r.stdout);
        if s.is_empty() {
            eprintln!("testpmd printed no rates:\n{}\n{}", r.stdout, r.stderr);
        }
        finish(s)
    } else {
        tso_run(cmd, a)
    };
    side.hugepages[1] = guest_huge;
    side
}

/// The interactive TSO run: set up, forward, read port 2's received bytes
/// once a second.
fn tso_run(mut cmd: Command, a: &Args) -> Side {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dpdk-testpmd");
    cleanup::record_child(&child);
    let mut stdin = child.stdin.take().expect("piped");
    let out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(out), &mut s);
        s
    });
    // The commands wait in the pipe while testpmd waits for the switch.
    let _ = stdin.write_all(tso_commands(a).as_bytes());
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..=a.seconds {
        let _ = stdin.write_all(b"show port stats 2\n");
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = stdin.write_all(b"stop\nquit\n");
    drop(stdin);
    wait_or_kill(&mut child, Duration::from_secs(15));
    let text = reader.join().unwrap_or_default();
    // Bytes received per second, from the cumulative counter.
    let mut per_show = Vec::new();
    for chunk in text.split("NIC statistics for port 2").skip(1) {
        if let Some(b) = rx_bytes(&format!("NIC statistics for port 2{chunk}"), 2) {
            per_show.push(b);
        }
    }
    let gbps: Vec<f64> = per_show
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 * 8.0 / 1e9)
        .collect();
    if gbps.is_empty() {
        eprintln!("testpmd (TSO) printed no port stats:\n{text}");
    }
    finish(gbps)
}

fn wait_or_kill(child: &mut Child, grace: Duration) {
    let t = Instant::now();
    while t.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn stop(mut child: Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_or_kill(&mut child, Duration::from_secs(15));
}

/// A free loopback TCP address for `vswitch run --metrics`.
fn free_loopback() -> Option<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
}

/// vswitch's worker packet, busy-cycle and busy-round counters from its
/// metrics endpoint (summed over its forwarding cores).
fn vswitch_counters(addr: std::net::SocketAddr) -> Option<Counts> {
    let text = proc::scrape_metrics(addr)
        .map_err(|e| eprintln!("vswitch metrics at {addr}: {e}"))
        .ok()?;
    Some(Counts {
        packets: proc::metric_sum(&text, "vswitch_worker_rx_packets_total")? as u64,
        busy_cycles: proc::metric_sum(&text, "vswitch_worker_busy_cycles_total")? as u64,
        busy_rounds: proc::metric_sum(&text, "vswitch_worker_busy_rounds_total").map(|r| r as u64),
        at: Instant::now(),
    })
}

/// vswitch between the guests: the flow table with the two `in_port`
/// rules, or with `xconnect` its patch panel (`--xconnect`: port 0 ⇄ 1,
/// no flow table; the same direct vhost calls), the floor of its own loop.
fn run_vswitch(dir: &Path, tag: &str, a: &Args, pcap: Option<&Path>, xconnect: bool) -> Side {
    let tag = &format!("{}{tag}", if xconnect { "x" } else { "" });
    let socks = [
        dir.join(format!("vs-{tag}-0")),
        dir.join(format!("vs-{tag}-1")),
    ];
    let mut eal = vec![
        "-l".to_string(),
        "0,1".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        format!("--file-prefix=vmnet-vs-{tag}"),
    ];
    let (mem, huge) = switch_memory();
    eal.extend(mem);
    let tso = if a.tso { ",tso=1" } else { "" };
    let mut c = Command::new(proc::vswitch_bin());
    c.args(["run", "--eal", &eal.join(" ")]);
    for (i, s) in socks.iter().enumerate() {
        c.args([
            "--port",
            &format!("net_vhost{i},iface={},client=1{tso}", s.display()),
        ]);
    }
    if xconnect {
        c.arg("--xconnect");
    } else {
        c.args([
            "--flow",
            "priority=100,in_port=0,actions=output:1",
            "--flow",
            "priority=100,in_port=1,actions=output:0",
        ]);
    }
    c.args([
        "--no-control",
        "--json",
        "--stats-interval",
        "0",
        "--duration",
        &(a.seconds + 60).to_string(),
    ]);
    // The worker's counters over the measured window come from its
    // Prometheus endpoint (read on the main lcore, CPU 0).
    let metrics = free_loopback();
    if let Some(m) = metrics {
        c.args(["--metrics", &m.to_string()]);
    }
    // Its log (the run summary with the offload counters) is kept next
    // to the sockets and printed when the run went wrong.
    let log = dir.join(format!("vswitch-{tag}.log"));
    match std::fs::File::create(&log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((o, e)) => c.stdout(o).stderr(e),
        Err(_) => c.stdout(Stdio::null()).stderr(Stdio::null()),
    };
    let child = c.spawn().expect("spawn vswitch");
    cleanup::record_child(&child);
    let socks = [socks[0].as_path(), socks[1].as_path()];
    let vtag = format!("v{tag}");
    let mut side = match metrics {
        Some(m) => measure_window(
            socks,
            &vtag,
            a,
            pcap,
            child.id(),
            || vswitch_counters(m),
            |c0| Some(vswitch_counters(m)?.since(c0)),
        ),
        None => measure(socks, &vtag, a, pcap),
    };
    stop(child);
    if std::env::var_os("VM_NET_SHOW_LOG").is_some() {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    side.hugepages[0] = huge;
    side
}

fn run_ovs(dir: &Path, tag: &str, a: &Args, pcap: Option<&Path>) -> Option<Side> {
    let cfg = ovs::Config {
        tag: format!("vmnet-{tag}"),
        pmd_core: 1,
        main_core: 0,
        socket_mem_mb: 512,
        source_devargs: String::new(),
        sink_devargs: String::new(),
    };
    let other: Vec<String> = if a.tso {
        vec!["other_config:userspace-tso-enable=true".into()]
    } else {
        vec![]
    };
    let socks = [
        dir.join(format!("ovs-{tag}-0")),
        dir.join(format!("ovs-{tag}-1")),
    ];
    let ports = [
        OvsPort::vhost_user_client("vm0", 1, &socks[0]),
        OvsPort::vhost_user_client("vm1", 2, &socks[1]),
    ];
    // Its EAL memory: `--in-memory` and `dpdk-socket-mem` (the pages of
    // the previous run first).
    proc::wait_for_hugepages(SWITCH_PAGES + GUEST_PAGES, Duration::from_secs(5));
    let o = match Ovs::start_with_ports(&cfg, &ports, &other) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("OVS-DPDK did not start: {e}");
            return None;
        }
    };
    if let Err(e) = o.replace_flows(
        "priority=100,in_port=1,actions=output:2\npriority=100,in_port=2,actions=output:1\n",
    ) {
        eprintln!("OVS flows: {e}");
        return None;
    }
    // The PMD's counters over the measured window: cleared once the
    // guests run (start-up and the warm-up second, with the first
    // packets' upcalls, left out), read before they stop.
    let mut side = measure_window(
        [&socks[0], &socks[1]],
        &format!("o{tag}"),
        a,
        pcap,
        o.vswitchd_pid().unwrap_or(0),
        || o.pmd_stats_clear().ok(),
        |()| {
            let p = o
                .pmd_stats()
                .map_err(|e| eprintln!("OVS pmd-stats-show: {e}"))
                .ok()?;
            let at = Instant::now();
            // Read a few ms later: the same to 0.1 % over seconds.
            let busy_rounds = o.pmd_busy_iterations().ok();
            Some(Counts {
                packets: p.packets,
                busy_cycles: p.processing_cycles,
                busy_rounds,
                at,
            })
        },
    );
    side.hugepages[0] = true;
    Some(side)
}

/// `total cycles=C / total io packets=P` of the last `show fwd stats`
/// in testpmd `--record-core-cycles` output.
fn testpmd_cycles(text: &str) -> Option<(u64, u64)> {
    let l = text
        .lines()
        .rev()
        .find(|l| l.contains("CPU cycles/packet="))?;
    let num = |key: &str| -> Option<u64> {
        l.split(key)
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((num("packets=")?, num("total cycles=")?))
}

/// The floor: `dpdk-testpmd` io-forwarding between two `net_vhost`
/// client ports on CPU 1 in place of a switch (no flow table, the vhost
/// PMD's burst functions): what the vhost library itself costs per
/// packet. Its busy cycles are testpmd's `--record-core-cycles` (bursts
/// that received packets, without the empty polls of the other port in
/// the same round, which vswitch's and OVS's counts include), cleared
/// and read over the measured window.
fn run_floor(dir: &Path, tag: &str, a: &Args) -> Option<Side> {
    let socks = [
        dir.join(format!("fl-{tag}-0")),
        dir.join(format!("fl-{tag}-1")),
    ];
    let mut c = Command::new("dpdk-testpmd");
    c.args([
        "-l",
        "0,1",
        "--main-lcore",
        "0",
        "--no-pci",
        "--no-telemetry",
        "--log-level=*:warning",
        "--file-prefix",
        &format!("vmnet-fl-{tag}"),
    ]);
    let (mem, huge) = switch_memory();
    c.args(mem);
    for (i, s) in socks.iter().enumerate() {
        c.args([
            "--vdev",
            &format!("net_vhost{i},iface={},client=1", s.display()),
        ]);
    }
    c.args([
        "--",
        "-i",
        "--forward-mode=io",
        "--auto-start",
        "--nb-cores=1",
        "--record-core-cycles",
        "--disable-link-check",
        "--total-num-mbufs=16384",
    ]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| eprintln!("floor dpdk-testpmd: {e}"))
        .ok()?;
    cleanup::record_child(&child);
    let stdin = std::sync::Mutex::new(child.stdin.take().expect("piped"));
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = child.stdout.take().expect("piped");
    let sink = std::sync::Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
            let mut t = sink.lock().unwrap_or_else(|e| e.into_inner());
            t.push_str(&l);
            t.push('\n');
        }
    });
    let say = |cmd: &str| {
        let mut i = stdin.lock().unwrap_or_else(|e| e.into_inner());
        i.write_all(cmd.as_bytes()).and_then(|_| i.flush()).is_ok()
    };
    let mut side = measure_window(
        [&socks[0], &socks[1]],
        &format!("f{tag}"),
        a,
        None,
        child.id(),
        || say("clear fwd stats all\n").then_some(()),
        |()| {
            let seen = text.lock().unwrap_or_else(|e| e.into_inner()).len();
            if !say("show fwd stats all\n") {
                return None;
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                let now = text.lock().unwrap_or_else(|e| e.into_inner())[seen..].to_string();
                if let Some((packets, busy_cycles)) = testpmd_cycles(&now) {
                    return Some(Counts {
                        packets,
                        busy_cycles,
                        busy_rounds: None,
                        at: Instant::now(),
                    });
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        },
    );
    let _ = say("stop\nquit\n");
    drop(stdin);
    wait_or_kill(&mut child, Duration::from_secs(15));
    let _ = reader.join();
    if side.busy_cycles_per_packet.is_none() {
        let t = text.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "floor testpmd printed no cycles:\n{}",
            proc::last_lines(&t, 30)
        );
    }
    side.hugepages[0] = huge;
    Some(side)
}

/// A pcap of IPv4 TCP segments of [`TSO_PAYLOAD`] bytes (one flow).
fn write_tso_pcap(path: &Path) -> std::io::Result<()> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + 20 + TSO_PAYLOAD) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x10;
    tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    f.extend_from_slice(&tcp);
    f.extend((0..TSO_PAYLOAD).map(|i| i as u8));
    let header = PcapHeader {
        snaplen: 65535,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path)?, header)
        .map_err(std::io::Error::other)?;
    for i in 0..16u64 {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(i),
            f.len() as u32,
            &f,
        ))
        .map_err(std::io::Error::other)?;
    }
    Ok(())
}

fn main() {
    let mut a = Args::parse();
    // Everything this harness starts inherits CPU 0: the guests, OVS's
    // daemons and non-PMD threads, every DPDK control thread (EAL puts
    // them on the process's CPUs outside its lcores, or on the main
    // lcore's when none is left). Only the pollers move to CPU 1 (their
    // EAL lcore, OVS's `pmd-cpu-mask`); each run checks it.
    if let Err(e) = threads::pin_self(GUEST_CPU) {
        eprintln!("cannot pin the harness to CPU {GUEST_CPU}: {e}");
    }
    let _cleanup = cleanup::install("vm_net");
    let dir: PathBuf = std::env::temp_dir().join(format!("perf-vmnet-{}", std::process::id()));
    cleanup::record(cleanup::Resource::Path(dir.clone()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = a.tso.then(|| {
        let p = dir.join("tso.pcap");
        write_tso_pcap(&p).expect("write pcap");
        p
    });
    a.hz = tsc_hz();
    if a.floor && a.tso {
        eprintln!("--floor measures 64-byte frames only: left out with --tso");
    }
    // The main guest configuration, then each `--also-guest-opts` one:
    // a table and a JSON line each.
    let configs = std::iter::once(a.guest_opts.clone()).chain(a.also_guest_opts.iter().cloned());
    for (c, opts) in configs.enumerate() {
        let ac = Args {
            guest_opts: opts,
            ..a.clone()
        };
        measure_config(&ac, c, &dir, pcap.as_deref());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every run of one guest configuration, by row.
#[derive(Serialize, Default)]
struct Rounds {
    vswitch: Vec<Side>,
    /// `None` where OVS did not start.
    ovs: Vec<Option<Side>>,
    floor: Vec<Side>,
    floor_xconnect: Vec<Side>,
}

/// One run of a row: the cross-core time before and after it, printed
/// as it ends.
fn timed_run(row: &str, round: u32, a: &Args, run: impl FnOnce() -> Option<Side>) -> Option<Side> {
    let before = (!a.tso).then(cross_core);
    let mut side = run()?;
    side.cross_core_ns = before.map(|b| [b, cross_core()]);
    println!("{}", round_line(row, round, &side, a.tso));
    Some(side)
}

/// Every round of one guest configuration (`a.guest_opts`, the `c`-th),
/// then its table and JSON line. vswitch and OVS take turns (ABBA: the
/// one that went second goes first in the next round) so that a drift of
/// the host over the run weighs on both alike.
fn measure_config(a: &Args, c: usize, dir: &Path, pcap: Option<&Path>) {
    let mut r = Rounds::default();
    println!(
        "\n-- guests {}: {} round(s) of {} s",
        if a.guest_opts.is_empty() {
            "default"
        } else {
            &a.guest_opts
        },
        a.rounds,
        a.seconds
    );
    for round in 0..a.rounds {
        let tag = format!("{}-{c}-{round}", std::process::id());
        let ovs_first = round % 2 == 1;
        for turn in 0..2 {
            if (turn == 0) != ovs_first {
                r.vswitch.extend(timed_run("vswitch", round, a, || {
                    Some(run_vswitch(dir, &tag, a, pcap, false))
                }));
            } else if !a.no_ovs {
                r.ovs.push(timed_run("OVS-DPDK", round, a, || {
                    run_ovs(dir, &tag, a, pcap)
                }));
            }
        }
        if a.floor && !a.tso {
            r.floor.extend(timed_run("floor testpmd", round, a, || {
                run_floor(dir, &tag, a)
            }));
            r.floor_xconnect
                .extend(timed_run("floor xconnect", round, a, || {
                    Some(run_vswitch(dir, &tag, a, None, true))
                }));
        }
    }
    report_config(a, &r);
}

/// Whether two cross-core times say the same vCPU placement (within
/// 1.5 x: this VM shows about 50, 230 and 400 ns).
fn same_place(a: f64, b: f64) -> bool {
    a.max(b) <= 1.5 * a.min(b)
}

/// A run's cross-core time if the placement held from its start to its
/// end (the mean of both readings).
fn steady_place(s: &Side) -> Option<f64> {
    let [b, e] = s.cross_core_ns?;
    same_place(b, e).then_some((b + e) / 2.0)
}

/// Ratios vswitch / OVS of `f` over the rounds where both ran; with
/// `same_host`, only the pairs whose two runs kept one and the same vCPU
/// placement throughout (the host's share of the spread taken out).
fn pair_ratios(r: &Rounds, f: fn(&Side) -> Option<f64>, same_host: bool) -> Vec<f64> {
    r.vswitch
        .iter()
        .zip(&r.ovs)
        .filter_map(|(v, o)| Some((v, o.as_ref()?)))
        .filter(|(v, o)| {
            !same_host
                || matches!((steady_place(v), steady_place(o)), (Some(x), Some(y)) if same_place(x, y))
        })
        .filter_map(|(v, o)| Some(f(v)? / f(o)?))
        .filter(|x| x.is_finite())
        .collect()
}

/// The pairs that kept one placement through both runs, grouped by it:
/// sorted by the pair's line time (the mean of its runs'), a new group
/// where a pair's time passes 1.5 x the group's lowest.
#[derive(Serialize, Debug, PartialEq)]
struct PlacementGroup {
    /// Lowest and highest line time (ns) of the group's pairs.
    line_ns: [f64; 2],
    /// Their per-busy-core ratios vswitch / OVS.
    per_busy_core: Spread,
}

fn placement_groups(r: &Rounds) -> Vec<PlacementGroup> {
    let mut pairs: Vec<(f64, f64)> = r
        .vswitch
        .iter()
        .zip(&r.ovs)
        .filter_map(|(v, o)| {
            let o = o.as_ref()?;
            let (x, y) = (steady_place(v)?, steady_place(o)?);
            let ratio = v.mpps_per_busy_core? / o.mpps_per_busy_core?;
            (same_place(x, y) && ratio.is_finite()).then_some(((x + y) / 2.0, ratio))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut groups: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in pairs {
        match groups.last_mut() {
            Some(g) if same_place(g[0].0, p.0) => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    groups
        .into_iter()
        .filter_map(|g| {
            let ratios: Vec<f64> = g.iter().map(|p| p.1).collect();
            Some(PlacementGroup {
                line_ns: [g[0].0, g[g.len() - 1].0],
                per_busy_core: Spread::of(&ratios)?,
            })
        })
        .collect()
}

/// The median figures of a row's runs, with all its per-second samples.
fn pick(v: &[Side]) -> Side {
    let med = |f: fn(&Side) -> Option<f64>| -> Option<f64> {
        let x: Vec<f64> = v.iter().filter_map(f).collect();
        (!x.is_empty()).then(|| report::median(&x))
    };
    Side {
        rate: report::median(&v.iter().map(|s| s.rate).collect::<Vec<_>>()),
        samples: v.iter().flat_map(|s| s.samples.clone()).collect(),
        switched: med(|s| s.switched),
        busy_cycles_per_packet: med(|s| s.busy_cycles_per_packet),
        mpps_per_busy_core: med(|s| s.mpps_per_busy_core),
        busy_share: med(|s| s.busy_share),
        pkts_per_busy_round: med(|s| s.pkts_per_busy_round),
        hugepages: [
            v.iter().all(|s| s.hugepages[0]),
            v.iter().all(|s| s.hugepages[1]),
        ],
        ..Side::default()
    }
}

/// `x.xx` or `-`.
fn opt(v: Option<f64>, p: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.p$}"))
}

/// `min..max` of `v` or `-`.
fn range(v: Option<(f64, f64)>) -> String {
    v.map_or("-".to_string(), |(a, b)| format!("{a:.2}..{b:.2}"))
}

/// One run's line: its rate and per-second range, its counters over the
/// window, and what the host did meanwhile.
fn round_line(row: &str, round: u32, s: &Side, tso: bool) -> String {
    let unit = if tso { "Gbps" } else { "Mpps" };
    let mut l = format!(
        "  round {round} {row:<15} delivered {:6.2} {unit} (per s {})",
        s.rate,
        range(s.sample_range())
    );
    if let Some(c) = s.busy_cycles_per_packet {
        l += &format!(
            ", {c:.0} busy cyc/pkt = {} Mpps/busy core, core {}% busy, {} pkts/busy round",
            opt(s.mpps_per_busy_core, 2),
            opt(s.busy_share.map(|b| b * 100.0), 0),
            opt(s.pkts_per_busy_round, 1)
        );
    }
    if let Some([b, e]) = s.cross_core_ns {
        l += &format!(" | CPU 0-1 line {b:.0}/{e:.0} ns");
    }
    if let Some(p) = &s.placement {
        let steal: Vec<String> = p.steal_pct.iter().map(|x| format!("{x:.1}")).collect();
        l += &format!(
            ", steal {} %, CPU {POLL_CPU} other {:.1} %, poller preempted {}",
            steal.join("/"),
            p.poll_cpu_other_pct,
            p.poller_preempted
        );
        if !p.others_on_poll_cpu.is_empty() {
            l += &format!(
                "\n    threads allowed on CPU {POLL_CPU} besides the poller: {}",
                p.others_on_poll_cpu.join(", ")
            );
        }
    }
    let page = |h: bool| if h { "2M" } else { "4K" };
    l + &format!(", pages {}/{}", page(s.hugepages[0]), page(s.hugepages[1]))
}

/// A pair-ratio spread as `median [q1..q3] min..max (n pairs)`.
fn spread_text(s: &Spread) -> String {
    format!(
        "{:.2} x [quartiles {:.2}..{:.2}] range {:.2}..{:.2} ({} pairs)",
        s.median, s.q1, s.q3, s.min, s.max, s.n
    )
}

/// Whether the pairs meet `goal`: by their median, and how surely.
fn verdict(s: &Spread, goal: f64) -> String {
    if s.median < goal {
        "NOT met".into()
    } else if s.min >= goal {
        "met (every pair)".into()
    } else if s.q1 >= goal {
        "met (lower quartile too; some pairs below)".into()
    } else {
        "met by the median only (lower quartile below: not established)".into()
    }
}

/// The run each row reports (the median of its rounds).
struct Picked {
    vs: Side,
    ovs_runs: Vec<Side>,
    ov: Option<Side>,
    fl: Option<Side>,
    xc: Option<Side>,
}

impl Picked {
    fn of(r: &Rounds) -> Picked {
        let ovs_runs: Vec<Side> = r.ovs.iter().flatten().cloned().collect();
        Picked {
            vs: pick(&r.vswitch),
            ov: (!ovs_runs.is_empty()).then(|| pick(&ovs_runs)),
            ovs_runs,
            fl: (!r.floor.is_empty()).then(|| pick(&r.floor)),
            xc: (!r.floor_xconnect.is_empty()).then(|| pick(&r.floor_xconnect)),
        }
    }
}

/// The round pairs' ratios of one configuration.
struct Pairs {
    delivered: Option<Spread>,
    per_busy_core: Option<Spread>,
    same_host_per_busy_core: Option<Spread>,
    by_placement: Vec<PlacementGroup>,
}

/// The table, the pairs' ratios and the JSON line of one configuration.
fn report_config(a: &Args, r: &Rounds) {
    let p = Picked::of(r);
    let pairs = Pairs {
        delivered: Spread::of(&pair_ratios(r, |s| Some(s.rate), false)),
        per_busy_core: Spread::of(&pair_ratios(r, |s| s.mpps_per_busy_core, false)),
        same_host_per_busy_core: Spread::of(&pair_ratios(r, |s| s.mpps_per_busy_core, true)),
        by_placement: placement_groups(r),
    };
    let (mode, unit, goal) = if a.tso {
        ("tso", "Gbps", 1.0)
    } else {
        ("64B", "Mpps", 2.0)
    };
    print_table(a, r, &p, unit);
    print_pairs(a, &pairs, goal);
    report::json_line(
        "vm_net",
        &Result {
            mode,
            guest_opts: a.guest_opts.clone(),
            unit,
            seconds: a.seconds,
            vswitch: p.vs,
            ovs: p.ov,
            floor: p.fl,
            floor_xconnect: p.xc,
            ratio: pairs.delivered.map(|s| s.median),
            ratio_per_busy_core: pairs.per_busy_core.map(|s| s.median),
            pairs_delivered: pairs.delivered,
            pairs_per_busy_core: pairs.per_busy_core,
            same_host_per_busy_core: pairs.same_host_per_busy_core,
            by_placement: pairs.by_placement,
            rounds: r,
            tsc_hz: a.hz,
            goal,
        },
    );
}

/// The configuration's table: one row per switch and floor.
fn print_table(a: &Args, r: &Rounds, p: &Picked, unit: &str) {
    let Picked {
        vs,
        ovs_runs,
        ov,
        fl,
        xc,
    } = p;
    // Each row's per-busy-core range over its rounds.
    let per_core_range = |v: &[Side]| {
        Spread::of(
            &v.iter()
                .filter_map(|s| s.mpps_per_busy_core)
                .collect::<Vec<_>>(),
        )
        .map(|s| (s.min, s.max))
    };
    let row = |name: &str, s: &Side, runs: &[Side], r: Option<f64>, rb: Option<f64>| {
        let mut row = vec![
            name.to_string(),
            format!("{:.2}", s.rate),
            range(s.sample_range()),
            opt(r, 2),
        ];
        if !a.tso {
            row.extend([
                opt(s.switched, 2),
                opt(s.busy_cycles_per_packet, 0),
                opt(s.mpps_per_busy_core, 2),
                range(per_core_range(runs)),
                opt(rb, 2),
                opt(s.busy_share.map(|b| b * 100.0), 0),
                opt(s.pkts_per_busy_round, 1),
            ]);
        }
        row
    };
    let vs_ovs = |f: &Side, x: fn(&Side) -> Option<f64>| {
        ov.as_ref()
            .and_then(|o| Some(x(f)? / x(o)?))
            .filter(|r| r.is_finite())
    };
    let mut rows = vec![row(
        "vswitch (net_vhost)",
        vs,
        &r.vswitch,
        vs_ovs(vs, |s| Some(s.rate)),
        vs_ovs(vs, |s| s.mpps_per_busy_core),
    )];
    if let Some(o) = ov {
        let one = o.mpps_per_busy_core.map(|_| 1.0);
        rows.push(row(
            "OVS-DPDK (dpdkvhostuserclient)",
            o,
            ovs_runs,
            Some(1.0),
            one,
        ));
    }
    for (name, side, runs) in [
        ("floor: testpmd io (net_vhost)", fl, &r.floor),
        ("floor: vswitch --xconnect", xc, &r.floor_xconnect),
    ] {
        if let Some(f) = side {
            rows.push(row(
                name,
                f,
                runs,
                vs_ovs(f, |s| Some(s.rate)),
                vs_ovs(f, |s| s.mpps_per_busy_core),
            ));
        }
    }
    let what = if a.tso {
        format!(
            "TCP with TSO ({} KiB segments, MSS {MSS})",
            (TSO_PAYLOAD + 54) / 1024
        )
    } else {
        "64-byte frames".to_string()
    };
    let rate_col = format!("delivered {unit}");
    let mut header = vec!["switch", rate_col.as_str(), "per s min..max", "vs OVS"];
    if !a.tso {
        header.extend([
            "switched Mpps",
            "busy cyc/pkt",
            "Mpps/busy core",
            "rounds min..max",
            "vs OVS",
            "core busy %",
            "pkts/busy round",
        ]);
    }
    report::table(
        &format!(
            "VM-to-VM over two vhost-user ports, {what}, 1 forwarding core, {} s x {} round(s) (medians){}",
            a.seconds,
            a.rounds,
            if a.guest_opts.is_empty() {
                String::new()
            } else {
                format!(", guests {}", a.guest_opts)
            }
        ),
        &header,
        &rows,
    );
}

/// The pairs' ratios under the table, and the verdict on `goal`.
fn print_pairs(a: &Args, pairs: &Pairs, goal: f64) {
    let Pairs {
        delivered: pairs_delivered,
        per_busy_core: pairs_per_busy_core,
        same_host_per_busy_core,
        by_placement,
    } = pairs;
    if let Some(p) = pairs_delivered {
        println!("  pairs vswitch/OVS, delivered:      {}", spread_text(p));
    }
    if let Some(p) = pairs_per_busy_core {
        println!("  pairs vswitch/OVS, per busy core:  {}", spread_text(p));
    }
    match same_host_per_busy_core {
        Some(p) => println!(
            "  the same, pairs on one vCPU placement throughout: {} -> {}",
            spread_text(p),
            verdict(p, goal)
        ),
        None if !a.tso && pairs_per_busy_core.is_some() => {
            println!("  no pair kept one vCPU placement throughout (CPU 0-1 line times above)")
        }
        None => {}
    }
    for g in by_placement {
        println!(
            "    of which at {:.0}-{:.0} ns line time: {}",
            g.line_ns[0],
            g.line_ns[1],
            spread_text(&g.per_busy_core)
        );
    }
    let judged = if a.tso {
        pairs_delivered
    } else {
        pairs_per_busy_core
    };
    if let Some(p) = judged {
        println!(
            "  goal: vswitch >= {goal:.1} x OVS-DPDK {}: {}",
            if a.tso { "delivered" } else { "per busy core" },
            verdict(p, goal)
        );
    }
    if !a.tso {
        println!(
            "  (TSC {:.2} GHz; a core busy well below 100 % is not what bounds its delivered rate)",
            a.hz / 1e9
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_testpmd_rates_and_bytes() {
        let out = "  Rx-pps:      1000000          Rx-bps:  1\n  Rx-pps:  2000000 \n\
                   \x20 Rx-pps:      3000000\n  Rx-pps: 1000000\n";
        assert_eq!(rx_pps_per_period(out), vec![3.0, 4.0]);
        let s = "  ###### NIC statistics for port 2  ######\n  RX-packets: 5  RX-missed: 0  RX-bytes:  12345\n";
        assert_eq!(rx_bytes(s, 2), Some(12345));
        assert_eq!(rx_bytes(s, 1), None);
        let fwd = "  CPU cycles/packet=50.00 (total cycles=100 / total io packets=2) at 2600 MHz Clock\n\
                   \n  CPU cycles/packet=62.50 (total cycles=1000 / total io packets=16) at 2600 MHz Clock\n";
        assert_eq!(testpmd_cycles(fwd), Some((16, 1000)));
        assert_eq!(testpmd_cycles("nothing"), None);
    }

    #[test]
    fn per_busy_core_figures_over_one_window() {
        let s = Side {
            rate: 9.0,
            ..Side::default()
        };
        // 2 GHz, 2 s, 20 M packets in 2 G busy cycles: 100 cycles per
        // packet, 20 Mpps per busy core, 10 Mpps switched, half busy.
        let w = Window {
            packets: 20_000_000,
            busy_cycles: 2_000_000_000,
            busy_rounds: Some(1_000_000),
            seconds: 2.0,
        };
        let b = s.clone().with_window(Some(w), 2e9);
        assert_eq!(b.busy_cycles_per_packet, Some(100.0));
        assert_eq!(b.mpps_per_busy_core, Some(20.0));
        assert_eq!(b.switched, Some(10.0));
        assert_eq!(b.busy_share, Some(0.5));
        assert_eq!(b.pkts_per_busy_round, Some(20.0));
        assert_eq!(b.rate, 9.0);
        let no_rounds = Window {
            busy_rounds: None,
            ..w
        };
        assert_eq!(
            s.clone()
                .with_window(Some(no_rounds), 2e9)
                .pkts_per_busy_round,
            None
        );
        for bad in [
            Window { packets: 0, ..w },
            Window {
                busy_cycles: 0,
                ..w
            },
            Window { seconds: 0.0, ..w },
        ] {
            let none = s.clone().with_window(Some(bad), 2e9);
            assert_eq!(none.mpps_per_busy_core, None);
            assert_eq!(none.busy_share, None);
        }
        assert_eq!(s.with_window(None, 2e9).switched, None);
    }

    fn run(rate: f64, per_core: Option<f64>) -> Side {
        Side {
            rate,
            mpps_per_busy_core: per_core,
            samples: vec![rate - 0.5, rate, rate + 0.5],
            ..Side::default()
        }
    }

    #[test]
    fn ratios_are_taken_per_round_pair() {
        // A bimodal host: both switches slow in round 1, fast in round 2.
        let r = Rounds {
            vswitch: vec![run(10.0, Some(10.0)), run(20.0, Some(20.0)), run(9.0, None)],
            ovs: vec![Some(run(8.0, Some(8.0))), Some(run(16.0, Some(10.0))), None],
            ..Rounds::default()
        };
        // Round 3 has no OVS run: two pairs.
        assert_eq!(pair_ratios(&r, |s| Some(s.rate), false), vec![1.25, 1.25]);
        assert_eq!(
            pair_ratios(&r, |s| s.mpps_per_busy_core, false),
            vec![1.25, 2.0]
        );
        let p = pick(&r.vswitch);
        assert_eq!(p.rate, 10.0);
        assert_eq!(p.mpps_per_busy_core, Some(15.0));
        assert_eq!(p.sample_range(), Some((8.5, 20.5)));
        // The ratio of the medians (15 / 9) is not what the pairs say.
        let s = Spread::of(&pair_ratios(&r, |s| s.mpps_per_busy_core, false)).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (1.625, 1.25, 2.0, 2));
        // Placement: pair 1 on one placement throughout, pair 2's OVS run
        // moved (50 -> 230 ns): only pair 1 is a same-host pair.
        let mut r = r;
        r.vswitch[0].cross_core_ns = Some([50.0, 55.0]);
        r.ovs[0].as_mut().unwrap().cross_core_ns = Some([52.0, 48.0]);
        r.vswitch[1].cross_core_ns = Some([50.0, 50.0]);
        r.ovs[1].as_mut().unwrap().cross_core_ns = Some([50.0, 230.0]);
        assert_eq!(pair_ratios(&r, |s| s.mpps_per_busy_core, true), vec![1.25]);
        r.ovs[1].as_mut().unwrap().cross_core_ns = Some([230.0, 240.0]);
        assert!(
            pair_ratios(&r, |s| s.mpps_per_busy_core, true).len() == 1,
            "50 vs 235 ns"
        );
        assert!(same_place(230.0, 240.0) && !same_place(50.0, 230.0));
    }

    #[test]
    fn same_placement_pairs_are_grouped_by_line_time() {
        let at = |ns: f64, per_core: f64| Side {
            cross_core_ns: Some([ns, ns]),
            ..run(per_core, Some(per_core))
        };
        let r = Rounds {
            vswitch: vec![
                at(230.0, 7.0),
                at(45.0, 12.0),
                at(250.0, 6.0),
                at(50.0, 10.0),
                at(50.0, 9.0),
            ],
            ovs: vec![
                Some(at(240.0, 5.0)),
                Some(at(50.0, 6.0)),
                Some(at(240.0, 5.0)),
                Some(at(55.0, 6.25)),
                // Moved: not a same-placement pair.
                Some(at(230.0, 5.0)),
            ],
            ..Rounds::default()
        };
        let g = placement_groups(&r);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[0].line_ns, [47.5, 52.5]);
        assert_eq!((g[0].per_busy_core.min, g[0].per_busy_core.max), (1.6, 2.0));
        assert_eq!(g[1].line_ns, [235.0, 245.0]);
        assert_eq!((g[1].per_busy_core.min, g[1].per_busy_core.max), (1.2, 1.4));
    }

    #[test]
    fn verdicts_follow_the_spread() {
        let sp = |v: &[f64]| Spread::of(v).unwrap();
        assert_eq!(verdict(&sp(&[1.1, 1.4, 2.3]), 2.0), "NOT met");
        assert_eq!(verdict(&sp(&[2.1, 2.2, 2.3]), 2.0), "met (every pair)");
        assert!(
            verdict(&sp(&[1.2, 2.1, 2.2, 2.3, 2.4]), 2.0).starts_with("met (lower quartile too")
        );
        assert!(verdict(&sp(&[1.2, 1.3, 2.1, 2.2, 2.4]), 2.0).contains("not established"));
    }

    #[test]
    fn a_round_line_shows_the_host() {
        let mut s = run(15.0, Some(15.3));
        s.busy_cycles_per_packet = Some(170.0);
        s.busy_share = Some(0.99);
        s.pkts_per_busy_round = Some(28.44);
        s.cross_core_ns = Some([45.0, 230.0]);
        s.hugepages = [true, false];
        s.placement = Some(Placement {
            others_on_poll_cpu: vec!["eal-intr-thread(7)".into()],
            steal_pct: vec![0.0, 1.5],
            ..Placement::default()
        });
        let l = round_line("vswitch", 2, &s, false);
        for want in [
            "round 2 vswitch",
            "delivered  15.00 Mpps (per s 14.50..15.50)",
            "170 busy cyc/pkt = 15.30 Mpps/busy core, core 99% busy, 28.4 pkts/busy round",
            "CPU 0-1 line 45/230 ns",
            "steal 0.0/1.5 %",
            "besides the poller: eal-intr-thread(7)",
            "pages 2M/4K",
        ] {
            assert!(l.contains(want), "{want:?} not in {l}");
        }
    }
}
