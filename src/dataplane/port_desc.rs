//! What a port is before it runs, and the DPDK device arguments it becomes.
//!
//! `--port`, the TOML file and the control socket give devargs directly;
//! an OVSDB `Interface` row gives OVS's `type` and `options`. Both end here,
//! as a [`PortDesc`], and [`super::ports::Ports::add`] turns its devargs
//! into a running port.
//!
//! | OVS `type` | options | DPDK device |
//! |---|---|---|
//! | `dpdk` | `dpdk-devargs` (required) | the devargs as given (a PCI address or any vdev) |
//! | `dpdkvhostuserclient` | `vhost-server-path` (required), `n_rxq` | `net_vhost`, `client=1`: QEMU owns the socket, the switch connects and reconnects (`n_rxq`: queue pairs, all polled) |
//! | `dpdkvhostuser` | `n_rxq` | `net_vhost` serving `RUNDIR/NAME` |
//! | `internal`, `tap` | | `net_tap` creating the kernel interface `NAME` |
//! | `""` / `system` | | `net_af_packet` on the existing kernel interface `NAME` |
//! | `vxlan`, `geneve` | `local_ip`, `remote_ip` (or `flow`), `key` (or `flow`), `dst_port`, `ttl`, `tos`, `df_default`, `underlay` | a tunnel port (`switch::tunnel`), no device: its `--port` form `NAME,type=vxlan,...` |
//!
//! An `mtu_request` becomes the port's `mtu=N` ([`super::port_opts`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use switch::tunnel::{TunnelConfig, TunnelKind};

/// One port, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortDesc {
    /// DPDK devargs as given.
    Devargs(String),
    /// vhost-user client: the switch connects to a socket QEMU listens on
    /// (OVS `dpdkvhostuserclient`), reconnecting when QEMU restarts.
    VhostUserClient {
        /// Interface name.
        name: String,
        /// QEMU's socket.
        path: PathBuf,
        /// Queue pairs.
        queues: u16,
    },
    /// vhost-user server: the switch owns the socket (OVS `dpdkvhostuser`).
    VhostUserServer {
        /// Interface name.
        name: String,
        /// The socket the switch creates.
        path: PathBuf,
        /// Queue pairs.
        queues: u16,
    },
    /// A tap device the switch creates (OVS `internal`, `tap`).
    Tap {
        /// Kernel interface name.
        iface: String,
    },
    /// An existing kernel interface through a packet socket (OVS `system`).
    System {
        /// Kernel interface name.
        iface: String,
    },
    /// A VXLAN or Geneve tunnel port (OVS `vxlan`, `geneve`).
    Tunnel(TunnelConfig),
}

/// Linux's limit on interface names (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

fn kernel_name(name: &str) -> Result<String, String> {
    if name.is_empty()
        || name.len() > IFNAME_MAX
        || name
            .chars()
            .any(|c| c == '/' || c == ',' || c == '=' || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} cannot name a kernel interface (1..={IFNAME_MAX} characters, no '/', ',', '=' or spaces)"
        ));
    }
    Ok(name.to_owned())
}

/// A DPDK virtual-device name for interface `name` of driver `driver`:
/// the driver's name followed by the interface name's safe characters
/// (DPDK matches vdev drivers by name prefix; the interface names of one
/// database are unique, and so are these).
fn vdev_name(driver: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{driver}_{safe}")
}

fn queues(options: &BTreeMap<String, String>) -> Result<u16, String> {
    match options.get("n_rxq") {
        None => Ok(1),
        Some(v) => match v.parse::<u16>() {
            Ok(n @ 1..=64) => Ok(n),
            _ => Err(format!("options:n_rxq={v:?} must be 1..=64")),
        },
    }
}

fn no_commas(what: &str, v: &str) -> Result<(), String> {
    if v.contains(',') {
        return Err(format!(
            "{what} {v:?} contains ',', which DPDK devargs cannot carry"
        ));
    }
    Ok(())
}

impl PortDesc {
    /// The port an OVSDB `Interface` row describes: its `name`, `type` and
    /// `options`; `rundir` holds `dpdkvhostuser` sockets. Unsupported types
    /// and missing options are errors that name the fix.
    pub fn from_ovs(
        name: &str,
        kind: &str,
        options: &BTreeMap<String, String>,
        rundir: &Path,
    ) -> Result<PortDesc, String> {
        match kind {
            "dpdk" => {
                let devargs = options.get("dpdk-devargs").ok_or_else(|| {
                    format!(
                        "interface {name}: type dpdk needs options:dpdk-devargs \
                         (a PCI address or a virtual device, e.g. net_pcap0,rx_pcap=in.pcap)"
                    )
                })?;
                if devargs.trim().is_empty() {
                    return Err(format!("interface {name}: options:dpdk-devargs is empty"));
                }
                Ok(PortDesc::Devargs(devargs.trim().to_owned()))
            }
            "dpdkvhostuserclient" => {
                let path = options.get("vhost-server-path").ok_or_else(|| {
                    format!(
                        "interface {name}: type dpdkvhostuserclient needs \
                         options:vhost-server-path (the socket QEMU listens on)"
                    )
                })?;
                no_commas("vhost-server-path", path)?;
                Ok(PortDesc::VhostUserClient {
                    name: name.to_owned(),
                    path: path.into(),
                    queues: queues(options)?,
                })
            }
            "dpdkvhostuser" => {
                no_commas("interface name", name)?;
                let path = rundir.join(name);
                no_commas("socket path", &path.to_string_lossy())?;
                Ok(PortDesc::VhostUserServer {
                    name: name.to_owned(),
                    path,
                    queues: queues(options)?,
                })
            }
            "internal" | "tap" => Ok(PortDesc::Tap {
                iface: kernel_name(name)?,
            }),
            "" | "system" => Ok(PortDesc::System {
                iface: kernel_name(name)?,
            }),
            "vxlan" | "geneve" => {
                no_commas("interface name", name)?;
                let kind = TunnelKind::from_name(kind).unwrap_or(TunnelKind::Vxlan);
                TunnelConfig::from_options(name, kind, options)
                    .map(PortDesc::Tunnel)
                    .map_err(|e| format!("interface {name}: {e}"))
            }
            other => Err(format!(
                "interface {name}: type {other:?} is not supported \
                 (supported: dpdk, dpdkvhostuserclient, dpdkvhostuser, internal, tap, system, vxlan, geneve)"
            )),
        }
    }

    /// The DPDK devargs that create this port.
    pub fn devargs(&self) -> String {
        match self {
            PortDesc::Devargs(d) => d.clone(),
            PortDesc::VhostUserClient { name, path, queues } => format!(
                "{},iface={},client=1,queues={queues}",
                vdev_name("net_vhost", name),
                path.display()
            ),
            PortDesc::VhostUserServer { name, path, queues } => format!(
                "{},iface={},queues={queues}",
                vdev_name("net_vhost", name),
                path.display()
            ),
            PortDesc::Tap { iface } => format!("{},iface={iface}", vdev_name("net_tap", iface)),
            PortDesc::System { iface } => {
                format!("{},iface={iface}", vdev_name("net_af_packet", iface))
            }
            PortDesc::Tunnel(t) => t.to_spec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ovs_types_become_devargs() {
        let run = Path::new("/run/ovs");
        let d = |name, kind, o: &[(&str, &str)]| {
            PortDesc::from_ovs(name, kind, &opts(o), run).map(|p| p.devargs())
        };
        assert_eq!(
            d(
                "dpdk0",
                "dpdk",
                &[("dpdk-devargs", "net_pcap0,rx_pcap=a.pcap")]
            )
            .unwrap(),
            "net_pcap0,rx_pcap=a.pcap"
        );
        assert_eq!(
            d(
                "vhu0",
                "dpdkvhostuserclient",
                &[("vhost-server-path", "/tmp/vhu0.sock"), ("n_rxq", "2")]
            )
            .unwrap(),
            "net_vhost_vhu0,iface=/tmp/vhu0.sock,client=1,queues=2"
        );
        assert_eq!(
            d("vm-1.eth0", "dpdkvhostuser", &[]).unwrap(),
            "net_vhost_vm_1_eth0,iface=/run/ovs/vm-1.eth0,queues=1"
        );
        assert_eq!(d("br0", "internal", &[]).unwrap(), "net_tap_br0,iface=br0");
        assert_eq!(
            d("veth1", "", &[]).unwrap(),
            "net_af_packet_veth1,iface=veth1"
        );
        assert_eq!(
            d(
                "vx0",
                "vxlan",
                &[
                    ("remote_ip", "10.0.0.2"),
                    ("local_ip", "10.0.0.1"),
                    ("key", "42")
                ]
            )
            .unwrap(),
            "vx0,type=vxlan,local_ip=10.0.0.1,remote_ip=10.0.0.2,key=42,dst_port=4789"
        );
    }

    #[test]
    fn bad_rows_say_what_is_missing() {
        let run = Path::new("/run/ovs");
        let e = |name, kind, o: &[(&str, &str)]| {
            PortDesc::from_ovs(name, kind, &opts(o), run).unwrap_err()
        };
        assert!(e("dpdk0", "dpdk", &[]).contains("options:dpdk-devargs"));
        assert!(e("v", "dpdkvhostuserclient", &[]).contains("vhost-server-path"));
        assert!(e("v", "dpdkvhostuserclient", &[("vhost-server-path", "/a,b")]).contains("','"));
        assert!(e("v", "dpdkvhostuser", &[("n_rxq", "0")]).contains("n_rxq"));
        assert!(e("g", "geneve", &[]).contains("local_ip"));
        assert!(e("g", "gre", &[]).contains("not supported"));
        assert!(e("a-very-long-interface-name", "internal", &[]).contains("kernel interface"));
    }
}
