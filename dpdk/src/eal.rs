//! The Environment Abstraction Layer: initialised once per process.

use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Set by the first `Eal::init` and never cleared: DPDK cannot be initialised
/// again in a process, even after `rte_eal_cleanup`.
static EAL_CLAIMED: AtomicBool = AtomicBool::new(false);

/// Hugepage availability, read from `/proc/meminfo` without touching DPDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugepageStatus {
    /// `HugePages_Total`.
    pub total: u64,
    /// `HugePages_Free`.
    pub free: u64,
    /// `Hugepagesize` in KiB.
    pub size_kib: u64,
}

impl HugepageStatus {
    /// Reads `/proc/meminfo`.
    pub fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        Some(Self::parse(&text))
    }

    /// Parses the hugepage lines of a `/proc/meminfo` text.
    pub fn parse(meminfo: &str) -> Self {
        let field = |name: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        HugepageStatus {
            total: field("HugePages_Total"),
            free: field("HugePages_Free"),
            size_kib: field("Hugepagesize"),
        }
    }
}

/// The initialised EAL. Dropping it runs `rte_eal_cleanup`; ports, pools and
/// rings must be dropped before it (they borrow nothing from it in the type
/// system, so keep the `Eal` alive for the whole run, as `main` does).
pub struct Eal {
    // The EAL belongs to the thread that initialised it (the main lcore).
    _main_thread: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises the EAL from command-line style arguments (without the
    /// program name), e.g. `["-l", "0-1", "--no-huge", "--no-pci"]`.
    ///
    /// A second call in the same process returns
    /// [`Error::EalAlreadyInitialised`] instead of crashing.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("vswitch").expect("static string"));
        for a in args {
            let a = a.as_ref();
            owned.push(
                CString::new(a).map_err(|_| {
                    Error::Invalid(format!("EAL argument {a:?} contains a NUL byte"))
                })?,
            );
        }
        if EAL_CLAIMED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialised);
        }
        // The EAL keeps pointers into argv (devargs, file prefix) for the whole
        // process lifetime, so the strings are leaked on purpose: once per
        // process, a few hundred bytes.
        let argv: &'static mut [*mut libc::c_char] = Box::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = argv.len() as libc::c_int;
        // SAFETY: argv holds argc valid, NUL-terminated, 'static strings; the
        // EAL may permute the array, which we never read again.
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(Error::from_rte_errno(
                "rte_eal_init",
                "check the EAL arguments and the EAL log lines above",
            ));
        }
        Ok(Eal {
            _main_thread: PhantomData,
        })
    }

    /// The main lcore's id.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised (self exists).
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Ids of the worker lcores (every enabled lcore but the main one).
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = u32::MAX; // rte_get_next_lcore(-1, ...) starts the scan.
        loop {
            // SAFETY: the EAL is initialised; the function only reads config.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
            if i >= dpdk_sys::RTE_MAX_LCORE {
                break;
            }
            out.push(i);
        }
        out
    }

    /// The time-stamp counter frequency measured by the EAL, in Hz.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised.
        unsafe { dpdk_sys::shim_rte_get_tsc_hz() }
    }

    /// Number of Ethernet ports currently available.
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised by this process and every lcore job
        // has been joined by its owner (LcoreJob joins on drop).
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_meminfo() {
        let text = "MemTotal: 1 kB\nHugePages_Total:     512\nHugePages_Free:      500\nHugePages_Rsvd: 0\nHugepagesize:       2048 kB\n";
        assert_eq!(
            HugepageStatus::parse(text),
            HugepageStatus {
                total: 512,
                free: 500,
                size_kib: 2048
            }
        );
    }

    #[test]
    fn parse_meminfo_without_hugepages() {
        let s = HugepageStatus::parse("MemTotal: 1 kB\n");
        assert_eq!(s.total, 0);
        assert_eq!(s.free, 0);
    }
}
