//! An interface to add to a bridge: name, OpenFlow port number, type and
//! more `Interface` columns.

use std::path::Path;

/// A port of [`crate::Sandbox::add_port`].
#[derive(Clone, Debug)]
pub struct Port {
    /// Interface name.
    pub name: String,
    /// OpenFlow port number asked for (`ofport_request`).
    pub ofport: u32,
    /// Interface type (`dpdk`, `dpdkvhostuser`, `dpdkvhostuserclient`).
    pub kind: String,
    /// More `Interface` columns, e.g. `options:dpdk-devargs=...`.
    pub options: Vec<String>,
}

impl Port {
    /// A `type=dpdk` port on `devargs`.
    pub fn dpdk(name: &str, ofport: u32, devargs: &str) -> Port {
        Port {
            name: name.into(),
            ofport,
            kind: "dpdk".into(),
            options: vec![format!("options:dpdk-devargs={devargs}")],
        }
    }

    /// A `type=dpdkvhostuserclient` port: the guest's front end serves the
    /// socket `server_path` and OVS connects (and reconnects) to it; with
    /// `userspace-tso-enable=true` OVS takes large segments on such ports
    /// only (external mbuf buffers; `dpdkvhostuser` ports register linear
    /// buffers alone, so a 64 KiB segment from the guest does not fit).
    pub fn vhost_user_client(name: &str, ofport: u32, server_path: &Path) -> Port {
        Port {
            name: name.into(),
            ofport,
            kind: "dpdkvhostuserclient".into(),
            options: vec![format!(
                "options:vhost-server-path={}",
                server_path.display()
            )],
        }
    }

    /// A `type=dpdkvhostuser` port: OVS serves the socket
    /// `RUNDIR/NAME` ([`crate::Sandbox::vhost_socket`]), a guest's virtio
    /// front end connects.
    pub fn vhost_user(name: &str, ofport: u32) -> Port {
        Port {
            name: name.into(),
            ofport,
            kind: "dpdkvhostuser".into(),
            options: vec![],
        }
    }

    /// With more `Interface` columns (`options:n_rxq=2`, ...).
    pub fn with(mut self, columns: &[&str]) -> Port {
        self.options.extend(columns.iter().map(|c| c.to_string()));
        self
    }
}
