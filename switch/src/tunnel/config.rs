//! A tunnel port's configuration, from `vswitch run --port
//! NAME,type=vxlan,...` (also the TOML `devargs`, `vswitch ports add`) or
//! an OVSDB `Interface` row's `type` and `options` (OVS's option names).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::action::parse_mac;
use crate::wire::{geneve, vxlan};

/// The encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN (RFC 7348), UDP port 4789.
    Vxlan,
    /// Geneve (RFC 8926), UDP port 6081.
    Geneve,
}

impl TunnelKind {
    /// `vxlan` / `geneve` (OVS interface types), or `None`.
    pub fn from_name(s: &str) -> Option<TunnelKind> {
        match s {
            "vxlan" => Some(TunnelKind::Vxlan),
            "geneve" => Some(TunnelKind::Geneve),
            _ => None,
        }
    }
    /// The OVS interface type.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }
    /// IANA UDP destination port.
    pub fn default_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => vxlan::UDP_PORT,
            TunnelKind::Geneve => geneve::UDP_PORT,
        }
    }
}

/// One tunnel port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Port name (`vswitch ports show`, OVSDB interface name).
    pub name: String,
    /// VXLAN or Geneve.
    pub kind: TunnelKind,
    /// UDP destination port (`dst_port`; default 4789 / 6081).
    pub dst_port: u16,
    /// This endpoint's IPv4 address (`local_ip`): outer destination of
    /// what it receives, outer source of what it sends. The switch answers
    /// ARP for it on the underlay.
    pub local_ip: [u8; 4],
    /// The far endpoint (`remote_ip`); `None` for `remote_ip=flow`: set
    /// by `set_field:A->tun_dst`, and packets from any source accepted.
    pub remote_ip: Option<[u8; 4]>,
    /// The VNI (`key`); `None` for `key=flow`: set by `set_tunnel`, and
    /// packets with any VNI accepted (matchable as `tun_id`).
    pub key: Option<u32>,
    /// The port outer packets leave by and arrive on (`underlay`); `None`:
    /// any non-tunnel port (ARP requests go out of all of them, and the
    /// port the reply came from is used).
    pub underlay: Option<u16>,
    /// Outer TTL (`ttl`, default 64).
    pub ttl: u8,
    /// Outer TOS byte (`tos`, default 0).
    pub tos: u8,
    /// Set DF in the outer header (`df_default`, default true).
    pub df: bool,
    /// Outer source MAC (`local_mac`); default: the underlay port's MAC.
    pub local_mac: Option<[u8; 6]>,
    /// The next hop's MAC for `remote_ip` (`remote_mac`, ours), fixed
    /// instead of resolved by ARP, as OVS's `ovs-appctl tnl/arp/set`
    /// does; needs a fixed `remote_ip` and an `underlay`.
    pub remote_mac: Option<[u8; 6]>,
    /// Requested switch port number (`port=` / OVS `ofport_request`).
    pub port: Option<u16>,
}

fn ip(name: &str, v: &str) -> Result<[u8; 4], String> {
    v.parse::<Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|_| format!("{name}={v}: not an IPv4 address"))
}

fn num<T: core::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{name}={v}: not a valid number"))
}

impl TunnelConfig {
    /// A tunnel port of `kind` named `name` from OVS-style options:
    /// `local_ip` and `remote_ip` (required; `remote_ip=flow`), `key`
    /// (default 0; `flow`; OVS's `in_key`/`out_key` must then agree),
    /// `dst_port`, `ttl`, `tos`, `df_default`, and ours: `underlay`
    /// (a port number), `local_mac`, `port`.
    pub fn from_options(
        name: &str,
        kind: TunnelKind,
        opts: &BTreeMap<String, String>,
    ) -> Result<TunnelConfig, String> {
        let mut c = TunnelConfig {
            name: name.to_owned(),
            kind,
            dst_port: kind.default_port(),
            local_ip: [0; 4],
            remote_ip: None,
            key: Some(0),
            underlay: None,
            ttl: 64,
            tos: 0,
            df: true,
            local_mac: None,
            remote_mac: None,
            port: None,
        };
        let keys: Vec<&String> = ["key", "in_key", "out_key"]
            .iter()
            .filter_map(|k| opts.get(*k))
            .collect();
        if keys.windows(2).any(|w| w[0].trim() != w[1].trim()) {
            return Err(format!(
                "{} port {name}: key, in_key and out_key differ (one key per port)",
                kind.name()
            ));
        }
        let mut have_local = false;
        let mut have_remote = false;
        for (k, v) in opts {
            let v = v.trim();
            match k.as_str() {
                "local_ip" => {
                    c.local_ip = ip(k, v)?;
                    have_local = true;
                }
                "remote_ip" => {
                    c.remote_ip = if v == "flow" { None } else { Some(ip(k, v)?) };
                    have_remote = true;
                }
                "key" | "in_key" | "out_key" => {
                    let key = if v == "flow" {
                        None
                    } else {
                        let k64: u64 = if let Some(h) = v.strip_prefix("0x") {
                            u64::from_str_radix(h, 16).map_err(|_| format!("{k}={v}: bad key"))?
                        } else {
                            num(k, v)?
                        };
                        if k64 > 0xff_ffff {
                            return Err(format!(
                                "{k}={v}: VXLAN and Geneve carry 24-bit keys (at most 16777215)"
                            ));
                        }
                        Some(k64 as u32)
                    };
                    c.key = key;
                }
                "dst_port" => {
                    c.dst_port = num(k, v)?;
                    if c.dst_port == 0 {
                        return Err("dst_port=0: not a UDP port".into());
                    }
                }
                "ttl" => {
                    c.ttl = num(k, v)?;
                    if c.ttl == 0 {
                        return Err("ttl=0: outer packets would never arrive".into());
                    }
                }
                "tos" => c.tos = num(k, v)?,
                "df_default" => {
                    c.df = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("df_default={v}: want true or false")),
                    }
                }
                "underlay" => c.underlay = Some(num(k, v)?),
                "local_mac" => c.local_mac = Some(parse_mac(v)?),
                "remote_mac" => {
                    let m = parse_mac(v)?;
                    if m[0] & 1 != 0 {
                        return Err(format!("remote_mac={v}: not a unicast MAC"));
                    }
                    c.remote_mac = Some(m);
                }
                "port" => c.port = Some(num(k, v)?),
                // OVS options without an effect here; `mtu` is the
                // switch's port option (the underlay's MTU is what counts).
                "csum" | "packet_type" | "mtu" => {}
                _ => {
                    return Err(format!(
                        "{} port {name}: unknown option `{k}` (local_ip, remote_ip, key, dst_port, \
                         ttl, tos, df_default, underlay, local_mac, remote_mac, port)",
                        kind.name()
                    ))
                }
            }
        }
        if !have_local {
            return Err(format!(
                "{} port {name} needs local_ip (this endpoint's IPv4 address on the underlay)",
                kind.name()
            ));
        }
        if !have_remote {
            return Err(format!(
                "{} port {name} needs remote_ip (the far endpoint, or `flow`)",
                kind.name()
            ));
        }
        if c.remote_mac.is_some() && (c.remote_ip.is_none() || c.underlay.is_none()) {
            return Err(format!(
                "{} port {name}: remote_mac needs a fixed remote_ip and an underlay",
                kind.name()
            ));
        }
        if c.local_ip == [0; 4] || c.local_ip[0] >= 224 {
            return Err(format!(
                "local_ip={}: not a unicast address",
                Ipv4Addr::from(c.local_ip)
            ));
        }
        Ok(c)
    }

    /// `NAME,type=vxlan|geneve,OPTION=VALUE,...` (the `--port` form): the
    /// tunnel it describes, `Ok(None)` when the string has no
    /// `type=vxlan`/`type=geneve` item (so it is DPDK devargs), or an error
    /// naming the bad option.
    pub fn parse(s: &str) -> Result<Option<TunnelConfig>, String> {
        let mut items = s.split(',').map(str::trim);
        let name = items.next().unwrap_or("");
        if name
            .strip_prefix("type=")
            .is_some_and(|t| TunnelKind::from_name(t).is_some())
        {
            return Err(format!(
                "`{s}`: a tunnel port starts with its name (vx0,type=vxlan,...)"
            ));
        }
        let mut kind = None;
        let mut opts = BTreeMap::new();
        for it in items {
            let (k, v) = it
                .split_once('=')
                .ok_or_else(|| format!("`{it}`: want OPTION=VALUE"))?;
            if k == "type" {
                match TunnelKind::from_name(v) {
                    Some(t) => kind = Some(t),
                    None => return Ok(None),
                }
            } else {
                opts.insert(k.to_owned(), v.to_owned());
            }
        }
        let Some(kind) = kind else {
            return Ok(None);
        };
        if name.is_empty() || name.contains('=') {
            return Err(format!(
                "`{s}`: a tunnel port starts with its name (vx0,type=vxlan,...)"
            ));
        }
        Self::from_options(name, kind, &opts).map(Some)
    }

    /// The `--port` form of this configuration ([`TunnelConfig::parse`]
    /// reads it back).
    pub fn to_spec(&self) -> String {
        let mut s = format!(
            "{},type={},local_ip={},remote_ip={},key={},dst_port={}",
            self.name,
            self.kind.name(),
            Ipv4Addr::from(self.local_ip),
            self.remote_ip
                .map_or("flow".to_string(), |a| Ipv4Addr::from(a).to_string()),
            self.key.map_or("flow".to_string(), |k| k.to_string()),
            self.dst_port
        );
        if let Some(u) = self.underlay {
            s += &format!(",underlay={u}");
        }
        if self.ttl != 64 {
            s += &format!(",ttl={}", self.ttl);
        }
        if self.tos != 0 {
            s += &format!(",tos={}", self.tos);
        }
        if !self.df {
            s += ",df_default=false";
        }
        if let Some(m) = self.local_mac {
            s += &format!(",local_mac={}", crate::action::fmt_mac(&m));
        }
        if let Some(m) = self.remote_mac {
            s += &format!(",remote_mac={}", crate::action::fmt_mac(&m));
        }
        s
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parse_forms() {
        let c = TunnelConfig::parse(
            "vx0,type=vxlan,local_ip=10.0.0.1,remote_ip=10.0.0.2,key=42,underlay=0",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.kind, TunnelKind::Vxlan);
        assert_eq!(c.dst_port, 4789);
        assert_eq!(c.local_ip, [10, 0, 0, 1]);
        assert_eq!(c.remote_ip, Some([10, 0, 0, 2]));
        assert_eq!(c.key, Some(42));
        assert_eq!(c.underlay, Some(0));
        assert!(c.df);
        assert_eq!(TunnelConfig::parse(&c.to_spec()).unwrap().unwrap(), c);
        let g = TunnelConfig::parse(
            "gn0,type=geneve,local_ip=10.0.0.1,remote_ip=flow,key=flow,ttl=9,df_default=false",
        )
        .unwrap()
        .unwrap();
        assert_eq!(g.dst_port, 6081);
        assert_eq!((g.remote_ip, g.key, g.ttl, g.df), (None, None, 9, false));
        assert_eq!(TunnelConfig::parse(&g.to_spec()).unwrap().unwrap(), g);
        let s = TunnelConfig::parse(
            "vx1,type=vxlan,local_ip=10.0.0.1,remote_ip=10.0.0.2,underlay=1,remote_mac=02:00:00:00:00:02",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.remote_mac, Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(TunnelConfig::parse(&s.to_spec()).unwrap().unwrap(), s);
        // Not a tunnel: DPDK devargs.
        assert_eq!(TunnelConfig::parse("net_tap0,iface=tap0").unwrap(), None);
        assert_eq!(TunnelConfig::parse("net_null0").unwrap(), None);
    }

    #[test]
    fn bad_options_are_named() {
        let e = |s: &str| TunnelConfig::parse(s).unwrap_err();
        assert!(e("vx0,type=vxlan,remote_ip=1.2.3.4").contains("local_ip"));
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4").contains("remote_ip"));
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=x").contains("IPv4"));
        assert!(
            e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=flow,key=16777216").contains("24-bit")
        );
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=flow,bogus=1").contains("bogus"));
        assert!(e("vx0,type=vxlan,local_ip=0.0.0.0,remote_ip=flow").contains("unicast"));
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=flow,dst_port=0").contains("UDP"));
        assert!(e("type=vxlan,local_ip=1.2.3.4,remote_ip=flow").contains("name"));
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=flow,underlay=0,remote_mac=02:00:00:00:00:01")
            .contains("remote_mac"));
        assert!(e(
            "vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=1.2.3.5,remote_mac=02:00:00:00:00:01"
        )
        .contains("underlay"));
        assert!(e("vx0,type=vxlan,local_ip=1.2.3.4,remote_ip=1.2.3.5,underlay=0,remote_mac=01:00:00:00:00:01")
            .contains("unicast"));
    }
}
