//! The switch's own options in a port's devargs, taken out before DPDK
//! sees them: `mtu=N` (`--port net_vhost0,iface=/s.sock,client=1,mtu=9000`,
//! `vswitch ports add`, OVSDB `mtu_request`).
//!
//! A port's MTU sizes the mbufs its rx queues fill: frames of up to
//! [`frame_room`] bytes arrive in one mbuf (the switch's frames are single
//! segments; a bigger frame a guest sends a port without `mtu=` spans
//! several mbufs, and the switch drops it as truncated, counted in
//! `vswitch stats`). Ports whose MTU needs more than the shared packet pool's room
//! get a pool of bigger mbufs (one per MTU, as OVS-DPDK's per-MTU
//! mempools). The driver is told the MTU too (`rte_eth_dev_set_mtu`) where
//! it has a setting for it; `net_vhost` has none: a guest learns its MTU
//! from QEMU (`virtio-net-pci,host_mtu=N`, VIRTIO 1.2 §5.1.3
//! `VIRTIO_NET_F_MTU`) or sets it itself.

/// The smallest MTU (IPv4's minimum datagram, RFC 791).
pub const MTU_MIN: u16 = 68;
/// The largest MTU (OVS-DPDK's limit: 9728-byte frames).
pub const MTU_MAX: u16 = 9710;

/// The switch's options of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortOpts {
    /// The port's MTU, when set.
    pub mtu: Option<u16>,
}

/// Bytes a frame of `mtu` takes: Ethernet header, one VLAN tag and the
/// FCS room drivers may count (OVS's `MTU_TO_MAX_FRAME_LEN`).
pub fn frame_room(mtu: u16) -> u16 {
    mtu + 14 + 4 + 4
}

/// Splits `devargs` into the DPDK devargs and the switch's options.
pub fn split(devargs: &str) -> Result<(String, PortOpts), String> {
    let mut opts = PortOpts::default();
    let mut kept = Vec::new();
    for (i, kv) in devargs.split(',').enumerate() {
        match kv.trim().strip_prefix("mtu=") {
            Some(v) if i > 0 => {
                let mtu = v
                    .parse::<u16>()
                    .ok()
                    .filter(|m| (MTU_MIN..=MTU_MAX).contains(m))
                    .ok_or_else(|| format!("mtu={v:?}: the MTU must be {MTU_MIN}..={MTU_MAX}"))?;
                if opts.mtu.replace(mtu).is_some() {
                    return Err(format!("{devargs:?}: mtu= is given twice"));
                }
            }
            _ => kept.push(kv),
        }
    }
    Ok((vhost_buffers(&kept.join(",")), opts))
}

/// A `net_vhost` port with TSO (`tso=1`) gets `ext-buffer=1` unless its
/// devargs choose (`ext-buffer=` or `linear-buffer=`): a guest's 64 KiB
/// segment is then dequeued into one external buffer, as OVS-DPDK's
/// `dpdkvhostuserclient` ports do with `userspace-tso-enable`, instead of a
/// chain of ~32 mbufs copied piece by piece (`vm_net --tso`, under load:
/// 3.8 Gbps chained, 10.5 Gbps with external buffers). Other frames still
/// fit the port's mbufs and do not use one.
fn vhost_buffers(devargs: &str) -> String {
    let mut kv = devargs.split(',').map(str::trim);
    let vhost = kv.next().is_some_and(|d| d.starts_with("net_vhost"));
    let (mut tso, mut chosen) = (false, false);
    for a in kv {
        tso |= a == "tso=1";
        chosen |= a.starts_with("ext-buffer=") || a.starts_with("linear-buffer=");
    }
    if vhost && tso && !chosen {
        format!("{devargs},ext-buffer=1")
    } else {
        devargs.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_is_taken_out_of_the_devargs() {
        assert_eq!(
            split("net_vhost0,iface=/a.sock,client=1,mtu=9000").unwrap(),
            (
                "net_vhost0,iface=/a.sock,client=1".to_string(),
                PortOpts { mtu: Some(9000) }
            )
        );
        assert_eq!(
            split("net_tap0,iface=t0").unwrap(),
            ("net_tap0,iface=t0".to_string(), PortOpts::default())
        );
        assert_eq!(frame_room(1500), 1522);
    }

    #[test]
    fn tso_vhost_ports_get_external_buffers() {
        let d = |s: &str| split(s).unwrap().0;
        assert_eq!(
            d("net_vhost0,iface=/a,client=1,tso=1,mtu=1500"),
            "net_vhost0,iface=/a,client=1,tso=1,ext-buffer=1"
        );
        for kept in [
            "net_vhost0,iface=/a,client=1",
            "net_vhost0,iface=/a,tso=0",
            "net_vhost0,iface=/a,tso=1,ext-buffer=0",
            "net_vhost0,iface=/a,tso=1,linear-buffer=1",
            "net_tap0,iface=tso=1",
        ] {
            assert_eq!(d(kept), kept);
        }
    }

    #[test]
    fn bad_mtus_are_refused() {
        for bad in ["mtu=", "mtu=67", "mtu=9711", "mtu=x", "mtu=-1"] {
            let e = split(&format!("net_vhost0,iface=/a,{bad}")).unwrap_err();
            assert!(e.contains("68..=9710"), "{bad}: {e}");
        }
        assert!(split("net_vhost0,mtu=1500,mtu=9000")
            .unwrap_err()
            .contains("twice"));
    }
}
