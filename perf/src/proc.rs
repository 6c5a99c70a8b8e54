//! Running a peer or our binary for a fixed time and collecting its output.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output of a timed run.
pub struct Run {
    /// Everything the process printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Whether it exited successfully (after our SIGINT, if we sent one).
    pub success: bool,
    /// User + system CPU seconds of the child, from its rusage.
    pub cpu_seconds: f64,
}

/// Runs `cmd`, sends SIGINT after `run_for` (if still running), and waits
/// at most `grace` more before killing it.
pub fn run_for(mut cmd: Command, run_for: Duration, grace: Duration) -> std::io::Result<Run> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    crate::cleanup::record_child(&child);
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut signalled = false;
    let status;
    loop {
        if let Some(st) = child.try_wait()? {
            status = st;
            break;
        }
        let el = start.elapsed();
        if !signalled && el >= run_for {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            signalled = true;
        }
        if el >= run_for + grace {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_seconds = children_cpu_seconds();
    Ok(Run {
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        success: status.success(),
        cpu_seconds,
    })
}

/// Cumulative user+system CPU seconds of all waited-for children so far.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain old data (integers and timevals); all-zero is
    // a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; RUSAGE_CHILDREN has no other requirement.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The `vswitch` binary next to this benchmark (same cargo profile), or the
/// one named by `$VSWITCH_BIN`.
pub fn vswitch_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VSWITCH_BIN") {
        return PathBuf::from(p);
    }
    let me = std::env::current_exe().expect("current exe");
    me.parent().expect("exe dir").join("vswitch")
}

/// Free 2 MiB hugepages (`HugePages_Free` of `/proc/meminfo`).
fn free_hugepages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// Waits up to `timeout` for at least `pages` free hugepages: a daemon of
/// the previous measurement (OVS, testpmd) may still be giving its pages
/// back, and a run started at once would fall back to 4 KiB pages
/// ([`eal_memory_args`]) and be slower for a reason its table does not
/// show. Returns the free count seen last.
pub fn wait_for_hugepages(pages: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut free = free_hugepages();
    while free < pages && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        free = free_hugepages();
    }
    free
}

/// EAL memory arguments: hugepages when at least 256 are free and hugetlbfs
/// is mounted, else `--no-huge`. The choice is printed to stderr, so a
/// report can tell runs on 4 KiB pages apart.
pub fn eal_memory_args() -> Vec<String> {
    let free = free_hugepages();
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .contains("hugetlbfs");
    if free >= 256 && mounted {
        eprintln!("  EAL memory: hugepages ({free} x 2 MiB free)");
        vec![]
    } else {
        eprintln!("  EAL memory: --no-huge ({free} hugepages free, hugetlbfs mounted: {mounted})");
        vec![
            "--no-huge".into(),
            "-m".into(),
            "1024".into(),
            "--no-shconf".into(),
        ]
    }
}

/// From `dpdk-testpmd --stats-period 1 --record-core-cycles` output: the
/// per-second Tx-pps samples of `port` (in Mpps) and the final "CPU
/// cycles/packet" figure, if printed.
pub fn parse_testpmd(stdout: &str, port: u32) -> (Vec<f64>, Option<f64>) {
    let mut samples = Vec::new();
    let mut current = None;
    for l in stdout.lines() {
        if let Some(rest) = l.split("NIC statistics for port").nth(1) {
            current = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok());
        }
        if current == Some(port) {
            if let Some(n) = l
                .trim()
                .strip_prefix("Tx-pps:")
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
            {
                samples.push(n / 1e6);
            }
        }
    }
    let cycles = stdout
        .lines()
        .find_map(|l| l.split("CPU cycles/packet=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.trim_end_matches(',').parse::<f64>().ok());
    (samples, cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_testpmd_stats() {
        let out = "  ######################## NIC statistics for port 0  ########################\n\
                   \x20 Tx-pps:            0          Tx-bps:            0\n\
                   \x20 ######################## NIC statistics for port 1  ########################\n\
                   \x20 Tx-pps:     41117921          Tx-bps:            0\n\
                   \x20 CPU cycles/packet=48.82 (busy cycles=1 / total packets=2) at 2500 MHz Clock\n";
        let (s, c) = parse_testpmd(out, 1);
        assert_eq!(s, vec![41.117921]);
        assert_eq!(c, Some(48.82));
        assert!(parse_testpmd(out, 2).0.is_empty());
    }
}

/// What a `vswitch run --json --stats-interval 1` printed: port `port`'s
/// per-second tx rates (Mpps, from its `port_stats` lines) and the run
/// `summary` object, if one came.
pub fn vswitch_json_rates(stdout: &str, port: u16) -> (Vec<f64>, Option<serde_json::Value>) {
    let mut samples = Vec::new();
    let mut summary = None;
    for l in stdout.lines() {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v["type"] == "port_stats" && v["stats"]["port"] == port {
            if let Some(p) = v["stats"]["tx_pps"].as_f64() {
                samples.push(p / 1e6);
            }
        }
        if v["type"] == "summary" {
            summary = Some(v["summary"].take());
        }
    }
    (samples, summary)
}

/// The body of `GET /metrics` from a `vswitch run --metrics ADDR`
/// endpoint (HTTP/1.0, the server closes the connection).
pub fn scrape_metrics(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    match s.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!(
            "unexpected metrics reply: {}",
            last_lines(&s, 3)
        ))),
    }
}

/// The sum of every sample of metric `name` (all label sets) in a
/// Prometheus text exposition, `None` when it has none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for l in text.lines() {
        let Some(rest) = l.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// The last `n` lines of `s` (for failure reports).
pub fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod json_tests {
    #[test]
    fn vswitch_json_rates_reads_one_port_and_the_summary() {
        let out = "starting\n\
            {\"type\":\"port_stats\",\"stats\":{\"port\":1,\"tx_pps\":2000000.0}}\n\
            {\"type\":\"port_stats\",\"stats\":{\"port\":0,\"tx_pps\":9.0}}\n\
            {\"type\":\"port_stats\",\"stats\":{\"port\":1,\"tx_pps\":3000000.0}}\n\
            {\"type\":\"summary\",\"summary\":{\"cycles_per_packet\":70.5}}\n";
        let (s, sum) = super::vswitch_json_rates(out, 1);
        assert_eq!(s, vec![2.0, 3.0]);
        assert_eq!(sum.unwrap()["cycles_per_packet"].as_f64(), Some(70.5));
        assert_eq!(super::last_lines("a\nb\nc", 2), "b\nc");
    }

    #[test]
    fn metric_sum_adds_label_sets_and_skips_prefixes() {
        let t = "# HELP x_total help\n# TYPE x_total counter\n\
                 x_total{core=\"0\"} 5\nx_total{core=\"1\"} 7\nx_total_more 100\nx_totalx 1\ny 3\n";
        assert_eq!(super::metric_sum(t, "x_total"), Some(12.0));
        assert_eq!(super::metric_sum(t, "y"), Some(3.0));
        assert_eq!(super::metric_sum(t, "z"), None);
    }
}
