//! Connection tracking and NAT for the switch's `ct` action, with Open
//! vSwitch's semantics (`ovs-actions(7)`, "The ct action"; OVS's user-space
//! tracker `lib/conntrack*.c` is the reference for behaviour, not for code).
//!
//! ```text
//!  switch datapath (per burst, per frame with a ct action)
//!     frame bytes, L3 offset, CtSpec ─► packet::parse  (IPv4/IPv6, TCP/UDP/ICMP, ICMP errors' inner packet)
//!                                     ─► Conntrack::execute
//!                                          table.rs  sharded connection table (both directions indexed)
//!                                          tcp.rs    TCP state + window checks; udp/icmp timeouts
//!                                          nat.rs    SNAT/DNAT port allocation
//!                                     ─► rewrite.rs (NAT: addresses, ports, checksums incrementally)
//!     ◄─ CtMeta (ct_state, zone, mark, label, original tuple) for the recirculation
//! ```
//!
//! The crate is sans-IO: it sees frame bytes and a clock in milliseconds.
//! A [`Conntrack`] is shared by every forwarding lcore (`Sync`); it never
//! takes a global lock on the fast path and allocates nothing per packet.

#![deny(missing_docs)]

pub mod checksum;
mod conn;
mod fast;
pub mod format;
pub mod ipf;
mod key;
mod lock;
mod mem;
mod nat;
pub mod packet;
pub mod rewrite;
pub mod spec;
mod table;
mod tcp;
mod timeout;
#[cfg(test)]
mod vectors;
mod view;
mod zone;

pub use fast::Prepared;
pub use spec::{nat_flags, CtSpec, NatKind, NatRange, NatSpec};

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use conn::Conn;
use key::Key;
use table::{shard_of, ForeignRef, Found, Guard, Table};
use tcp::Update;

/// `ct_state` bits, with Open vSwitch's values (`NXM_NX_CT_STATE`,
/// `ovs-fields(7)`), so flows and OpenFlow matches carry them unchanged.
pub mod state {
    /// The packet starts a new connection (or one not committed yet).
    pub const NEW: u8 = 0x01;
    /// The packet belongs to an established connection.
    pub const EST: u8 = 0x02;
    /// The packet is related to a connection (an ICMP error).
    pub const REL: u8 = 0x04;
    /// The packet goes in the reply direction.
    pub const RPL: u8 = 0x08;
    /// The packet is invalid (unparsable, out of window, bad flags).
    pub const INV: u8 = 0x10;
    /// The packet went through the tracker.
    pub const TRK: u8 = 0x20;
    /// The packet's source was translated.
    pub const SNAT: u8 = 0x40;
    /// The packet's destination was translated.
    pub const DNAT: u8 = 0x80;
}

/// A connection tuple as a packet carries it (the original direction's is
/// `ct_nw_src`, `ct_nw_dst`, `ct_nw_proto`, `ct_tp_src`, `ct_tp_dst`).
///
/// ICMP/ICMPv6 queries (echo, timestamp, information) follow OVS's
/// connection key (`lib/conntrack.c`, `extract_l4_icmp`): a query is keyed
/// by its identifier *and* its type, the reply direction holding the reply
/// type. Here `src_port` is the identifier (in both directions: NAT
/// rewrites it as a port) and `dst_port` is `type << 8 | code`;
/// [`Tuple::reverse`] keeps the identifier and turns a request type into
/// its reply type and back. So an echo request A→B id 7 is
/// `(A, B, 7, 8 << 8)`, its reply `(B, A, 7, 0)`. OVS's `ct_tp_src` and
/// `ct_tp_dst` of an ICMP connection are its type and code:
/// [`Tuple::ct_tp_src`], [`Tuple::ct_tp_dst`]. Other protocols than
/// TCP/UDP/ICMP have zero ports.
///
/// This is the convention of [`packet::Parsed::tuple`], [`rewrite::rewrite`]
/// and [`mod@format`] (`vswitch ct show`: `id=`, `type=`, `code=`).
/// [`CtMeta::orig`] instead carries the match values themselves
/// (`ct_tp_src`/`ct_tp_dst`: for ICMP, type and code in `src_port` and
/// `dst_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (ICMP: see the type docs).
    pub src_port: u16,
    /// Destination port (ICMP: see the type docs).
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl Tuple {
    /// The reply direction's tuple: addresses and ports swapped; for an
    /// ICMP/ICMPv6 query the identifier kept and the type turned into its
    /// reply (OVS `reverse_icmp_type`, `reverse_icmp6_type`).
    pub fn reverse(&self) -> Tuple {
        if self.is_icmp() {
            let (ty, code) = ((self.dst_port >> 8) as u8, self.dst_port as u8);
            return Tuple {
                src: self.dst,
                dst: self.src,
                src_port: self.src_port,
                dst_port: Tuple::icmp_type_code(reverse_icmp_type(ty), code),
                proto: self.proto,
            };
        }
        Tuple {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }

    /// True for ICMP over IPv4 or ICMPv6 over IPv6.
    pub fn is_icmp(&self) -> bool {
        matches!(
            (self.proto, self.src),
            (packet::proto::ICMP, IpAddr::V4(_)) | (packet::proto::ICMPV6, IpAddr::V6(_))
        )
    }

    /// The `dst_port` of an ICMP query tuple: `type << 8 | code`.
    pub fn icmp_type_code(icmp_type: u8, code: u8) -> u16 {
        u16::from(icmp_type) << 8 | u16::from(code)
    }

    /// OVS's `ct_tp_src` of a connection with this original tuple: the
    /// source port, or for ICMP the type.
    pub fn ct_tp_src(&self) -> u16 {
        if self.is_icmp() {
            self.dst_port >> 8
        } else {
            self.src_port
        }
    }

    /// OVS's `ct_tp_dst`: the destination port, or for ICMP the code.
    pub fn ct_tp_dst(&self) -> u16 {
        if self.is_icmp() {
            self.dst_port & 0xff
        } else {
            self.dst_port
        }
    }
}

/// The reply type of an ICMP/ICMPv6 query type (other types unchanged).
fn reverse_icmp_type(ty: u8) -> u8 {
    use packet::icmp;
    match ty {
        icmp::ECHO_REQUEST => icmp::ECHO_REPLY,
        icmp::ECHO_REPLY => icmp::ECHO_REQUEST,
        icmp::TIMESTAMP => icmp::TIMESTAMP_REPLY,
        icmp::TIMESTAMP_REPLY => icmp::TIMESTAMP,
        icmp::INFO_REQUEST => icmp::INFO_REPLY,
        icmp::INFO_REPLY => icmp::INFO_REQUEST,
        icmp::V6_ECHO_REQUEST => icmp::V6_ECHO_REPLY,
        icmp::V6_ECHO_REPLY => icmp::V6_ECHO_REQUEST,
        other => other,
    }
}

/// The conntrack fields a frame carries after a `ct` action, matched by
/// later tables (`ct_state`, `ct_zone`, `ct_mark`, `ct_label`, and the
/// original tuple). `Default` is the untracked frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtMeta {
    /// [`state`] bits; 0 = untracked.
    pub state: u8,
    /// The zone the frame was tracked in.
    pub zone: u16,
    /// The connection's mark.
    pub mark: u32,
    /// The connection's label.
    pub label: u128,
    /// The original-direction tuple as the `ct_nw_*`/`ct_tp_*` fields
    /// carry it (OVS's `ct_orig_tuple`): of the connection, or of the
    /// packet when no connection was found or created; None for frames
    /// the tracker could not parse. Unlike [`Tuple`]'s wire convention,
    /// for ICMP `src_port` is the type and `dst_port` the code (what
    /// `ct_tp_src`/`ct_tp_dst` match).
    pub orig: Option<Tuple>,
}

/// Tracker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections the table holds in all (preallocated).
    pub max_conns: u32,
    /// Connections a zone may hold unless `set_zone_limit` says otherwise
    /// (0: only `max_conns` limits).
    pub default_zone_limit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_conns: 1 << 20,
            default_zone_limit: 0,
        }
    }
}

/// One connection as `vswitch ct show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Zone.
    pub zone: u16,
    /// Original direction ([`Tuple`]'s wire convention).
    pub orig: Tuple,
    /// Reply direction (after NAT: the translated tuple, reversed).
    pub reply: Tuple,
    /// Protocol state name (TCP: "ESTABLISHED", "SYN_SENT", ...; others
    /// "NEW"/"ESTABLISHED" as `conntrack -L`).
    pub state: &'static str,
    /// Mark.
    pub mark: u32,
    /// Label.
    pub label: u128,
    /// Milliseconds until it expires.
    pub expires_in_ms: u64,
}

/// Tracker counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections in the table.
    pub entries: u64,
    /// Connections committed since start.
    pub committed: u64,
    /// Packets marked invalid.
    pub invalid: u64,
    /// Commits refused by a zone limit or a full table.
    pub limit_drops: u64,
    /// Connections expired.
    pub expired: u64,
}

/// The connection tracker, shared by every forwarding lcore.
///
/// A packet of an established connection costs one symmetric hash, one
/// shard lock, one index probe and one key compare (`table.rs`); the
/// protocol update runs under that lock. Nothing is allocated per packet.
pub struct Conntrack {
    cfg: Config,
    table: Table,
    /// Packets invalid before any shard was locked (unparsable, fragments,
    /// not allowed to start a connection, unrelated ICMP errors).
    invalid: AtomicU64,
    limit_drops: AtomicU64,
    rnd: AtomicU64,
    verify_checksums: AtomicBool,
    /// Fragment reassembly settings and counters (`ipf`).
    ipf: ipf::Ipf,
}

/// A located connection, its home shard locked.
struct Hit<'a> {
    g: Guard<'a>,
    home: usize,
    slot: u32,
    reply: bool,
}

/// Foreign records to remove once no shard lock is held.
#[derive(Default)]
struct Pending {
    refs: [Option<ForeignRef>; 6],
}

impl Pending {
    #[inline]
    fn add(&mut self, fr: Option<ForeignRef>) {
        if let Some(fr) = fr {
            if let Some(s) = self.refs.iter_mut().find(|s| s.is_none()) {
                *s = Some(fr);
            }
        }
    }
}

/// What a commit produced.
enum Commit<'a> {
    /// The connection, its shard locked.
    Done(Hit<'a>),
    /// Refused (limits, NAT exhaustion): the packet stays `+new`.
    Refused,
    /// Another lcore committed the same key meanwhile: track again.
    Raced,
}

impl Conntrack {
    /// A tracker with room for `cfg.max_conns` connections.
    pub fn new(cfg: Config) -> Conntrack {
        let table = Table::new(cfg.max_conns, cfg.default_zone_limit);
        let rnd = table.seed[0];
        Conntrack {
            cfg,
            table,
            invalid: AtomicU64::new(0),
            limit_drops: AtomicU64::new(0),
            rnd: AtomicU64::new(rnd),
            verify_checksums: AtomicBool::new(false),
            ipf: ipf::Ipf::default(),
        }
    }

    /// Fragment reassembly's settings and counters (OVS's `dpctl/ipf-*`);
    /// the fragments themselves are held by each caller's
    /// [`ipf::Reassembler`].
    pub fn ipf(&self) -> &ipf::Ipf {
        &self.ipf
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Run one `ct` action on `frame` (its IP header at `l3`): look up the
    /// connection, track its state, commit/NAT as `spec` says (rewriting
    /// the frame in place), and set `meta` to what the recirculated frame
    /// matches on. `meta` holds the frame's ct fields so far (a second `ct`
    /// in another zone, or `ct_clear`'s zeros).
    ///
    /// Semantics are OVS's (`process_one` in `lib/conntrack.c`): entering
    /// another zone clears the state; a packet no connection knows is
    /// `+new` (or `+inv` if it may not start one) until a `commit`; `exec`
    /// (mark, label) applies only with `commit`; `force` ends a connection
    /// met in the reply direction; `nat` translates only connections that
    /// have a translation; fragments and unparsable packets are `+trk+inv`.
    #[inline]
    pub fn execute(
        &self,
        frame: &mut [u8],
        l3: usize,
        spec: &CtSpec,
        meta: &mut CtMeta,
        now_ms: u64,
    ) {
        let zone = spec.zone;
        let prior = if meta.zone == zone { meta.state } else { 0 };
        let pkt = match view::parse(frame, l3) {
            Some(p) if !p.frag && self.checksums_ok(frame, &p) => p,
            _ => {
                // OVS-DPDK with its ipf reassembly disabled tracks IP
                // fragments as invalid (OVS 3.1 enables ipf by default;
                // reassembly is not done here yet); unparsable packets
                // likewise.
                self.invalid.fetch_add(1, Ordering::Relaxed);
                *meta = CtMeta {
                    state: state::TRK | state::INV,
                    zone,
                    ..CtMeta::default()
                };
                return;
            }
        };
        let key = pkt.key(zone);
        let mut pending = Pending::default();
        let done =
            (0..3).any(|_| self.track(frame, &pkt, key, spec, prior, meta, now_ms, &mut pending));
        if !done {
            // Lost the commit race three times: report it new, untracked.
            *meta = CtMeta {
                state: state::TRK | state::NEW,
                zone,
                orig: Some(key.meta_tuple()),
                ..CtMeta::default()
            };
        }
        for fr in pending.refs.into_iter().flatten() {
            self.table.clean_foreign(fr);
        }
    }

    /// With [`Conntrack::set_verify_checksums`]: whether the IPv4 header
    /// and L4 checksums verify.
    #[inline]
    fn checksums_ok(&self, frame: &[u8], p: &view::Pkt) -> bool {
        if !self.verify_checksums.load(Ordering::Relaxed) {
            return true;
        }
        let c = checksum::verify(frame, &p.p);
        c.ip != Some(false) && c.l4 != Some(false)
    }

    /// Check the IPv4 header and L4 checksums of every tracked frame, as
    /// OVS does for frames whose checksums no NIC validated (`check_l4_*`
    /// in `lib/conntrack.c`): a bad one makes the frame `+inv`. Off by
    /// default: frames from vhost-user guests and veths with checksum
    /// offload carry partial checksums the switch cannot tell apart here.
    pub fn set_verify_checksums(&self, on: bool) {
        self.verify_checksums.store(on, Ordering::Relaxed);
    }

    /// One attempt of `execute`; false if it lost a commit race and must
    /// run again.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn track(
        &self,
        frame: &mut [u8],
        pkt: &view::Pkt,
        mut key: Key,
        spec: &CtSpec,
        prior: u8,
        meta: &mut CtMeta,
        now: u64,
        pending: &mut Pending,
    ) -> bool {
        let zone = spec.zone;
        let natted = prior & (state::SNAT | state::DNAT) != 0;
        let mut st = prior;

        // A frame already translated in this zone carries the translated
        // tuple: find its connection through the reverse key.
        let mut hit = None;
        if natted {
            if let Some(mut h) = self.lookup(&key.reverse(), now, pending) {
                h.reply = !h.reply;
                key = h.g.conns[h.slot as usize].keys[usize::from(h.reply)];
                hit = Some(h);
            }
        }
        if hit.is_none() {
            hit = self.lookup(&key, now, pending);
        }
        if spec.force {
            if let Some(h) = hit.take_if(|h| h.reply) {
                let Hit {
                    mut g, home, slot, ..
                } = h;
                pending.add(self.table.remove(&mut g, home, slot));
            }
        }

        let mut found = None;
        match hit {
            Some(mut h) => {
                let c = &mut h.g.conns[h.slot as usize];
                if pkt.related {
                    st |= state::REL;
                    if h.reply {
                        st |= state::RPL;
                    }
                    found = Some(h);
                } else {
                    match c.update(&pkt.l4, h.reply, now) {
                        Update::Valid => {
                            st = (st | state::EST) & !state::NEW;
                            if h.reply {
                                st |= state::RPL;
                            }
                            found = Some(h);
                        }
                        Update::ValidNew => {
                            st |= state::NEW;
                            found = Some(h);
                        }
                        Update::Invalid => {
                            st = state::INV;
                            h.g.invalid += 1;
                            found = Some(h);
                        }
                        Update::Reopen => {
                            let Hit {
                                mut g, home, slot, ..
                            } = h;
                            pending.add(self.table.remove(&mut g, home, slot));
                        }
                    }
                }
                if let (Some(h), Some(_)) = (&mut found, &spec.nat) {
                    if !natted {
                        st |= self.nat_frame(frame, pkt, &h.g.conns[h.slot as usize], h.reply);
                    }
                }
            }
            None if pkt.related => {
                // An ICMP error no connection knows.
                self.invalid.fetch_add(1, Ordering::Relaxed);
                st = state::INV;
            }
            None => {}
        }

        if found.is_none() && !(pkt.related && st == state::INV) {
            // Not found (or just ended): a new connection.
            if !pkt.l4.valid_new() {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                st = state::INV;
            } else {
                st = state::NEW;
                if spec.commit {
                    match self.commit(frame, pkt, key, spec, now, pending) {
                        Commit::Done(h) => {
                            st |= self.nat_bits(&h.g.conns[h.slot as usize], false);
                            found = Some(h);
                        }
                        Commit::Refused => {
                            self.limit_drops.fetch_add(1, Ordering::Relaxed);
                        }
                        Commit::Raced => return false,
                    }
                }
            }
        }

        match found {
            Some(mut h) => {
                let slot = h.slot;
                if spec.commit {
                    if let Some((v, m)) = spec.set_mark {
                        let c = &mut h.g.conns[slot as usize];
                        c.mark = (c.mark & !m) | (v & m);
                    }
                    if let Some((v, m)) = spec.set_label {
                        let l = h.g.label(slot);
                        h.g.set_label(slot, (l & !m) | (v & m));
                    }
                }
                let c = &h.g.conns[slot as usize];
                *meta = CtMeta {
                    state: st | state::TRK,
                    zone,
                    mark: c.mark,
                    label: h.g.label(slot),
                    orig: Some(c.keys[0].meta_tuple()),
                };
            }
            None => {
                *meta = CtMeta {
                    state: st | state::TRK,
                    zone,
                    mark: 0,
                    label: 0,
                    orig: Some(key.meta_tuple()),
                };
            }
        }
        true
    }

    /// Find `key`'s connection and lock its home shard. Expired
    /// connections met are removed (their foreign records to `pending`).
    #[inline]
    fn lookup(&self, key: &Key, now: u64, pending: &mut Pending) -> Option<Hit<'_>> {
        let h = self.table.hash(key);
        let si = shard_of(h);
        let mut g = self.table.lock(si);
        match g.find(key, h, self.table.shards()) {
            Found::None => None,
            Found::Local { slot, reply } => {
                if g.conns[slot as usize].expires <= now {
                    pending.add(self.table.remove(&mut g, si, slot));
                    g.expired += 1;
                    return None;
                }
                Some(Hit {
                    g,
                    home: si,
                    slot,
                    reply,
                })
            }
            Found::Foreign { home, slot, gen } => {
                drop(g);
                let home = home as usize;
                let mut g = self.table.lock(home);
                let c = &g.conns[slot as usize];
                if !self.table.gen_is(home, slot, gen) || c.alive == 0 || c.keys[1] != *key {
                    return None;
                }
                if c.expires <= now {
                    pending.add(self.table.remove(&mut g, home, slot));
                    g.expired += 1;
                    return None;
                }
                Some(Hit {
                    g,
                    home,
                    slot,
                    reply: true,
                })
            }
        }
    }

    /// Create the connection of `key` (the packet's direction is the
    /// original one), with its NAT translation, and translate the frame.
    #[allow(clippy::too_many_arguments)]
    fn commit<'a>(
        &'a self,
        frame: &mut [u8],
        pkt: &view::Pkt,
        key: Key,
        spec: &CtSpec,
        now: u64,
        pending: &mut Pending,
    ) -> Commit<'a> {
        let h0 = self.table.hash(&key);
        let home = shard_of(h0);
        let mut g = self.table.lock(home);
        match g.find(&key, h0, self.table.shards()) {
            Found::None => {}
            Found::Local { slot, .. } if g.conns[slot as usize].expires <= now => {
                pending.add(self.table.remove(&mut g, home, slot));
                g.expired += 1;
            }
            _ => return Commit::Raced,
        }
        if self.table.reserve(key.zone()).is_err() {
            return Commit::Refused;
        }
        let Some(slot) = self.table.alloc(&mut g) else {
            self.table.unreserve(key.zone());
            return Commit::Refused;
        };
        g.conns[slot as usize].init(key, key.reverse(), &pkt.l4, now);

        let mut h1 = None;
        if let Some(NatSpec {
            kind: kind @ (NatKind::Src | NatKind::Dst),
            range: Some(range),
            flags,
        }) = spec.nat
        {
            let rnd = self.rnd.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            let mut foreign = None;
            let table = &self.table;
            let g_ref = &mut g;
            let rev = nat::search(&key, kind, &range, flags, h0, rnd, |rev| {
                let hr = table.hash(rev);
                let b = shard_of(hr);
                if b == home {
                    g_ref.find(rev, hr, table.shards()) == Found::None
                } else {
                    let Some(mut bg) = table.lock_second(home, b) else {
                        return false;
                    };
                    if bg.find(rev, hr, table.shards()) != Found::None {
                        return false;
                    }
                    match table.add_foreign(&mut bg, *rev, hr, home, slot) {
                        Some(rec) => {
                            foreign = Some((b, rec));
                            true
                        }
                        None => false,
                    }
                }
            });
            let Some(rev) = rev else {
                self.table.unalloc(&mut g, slot);
                self.table.unreserve(key.zone());
                return Commit::Refused;
            };
            let hr = self.table.hash(&rev);
            let c = &mut g.conns[slot as usize];
            c.keys[1] = rev;
            if rev != key.reverse() {
                c.nat = if kind == NatKind::Src {
                    conn::NAT_SRC
                } else {
                    conn::NAT_DST
                };
            }
            if let Some((b, rec)) = foreign {
                c.foreign = rec + 1;
                c.foreign_shard = b as u16;
            } else if hr != h0 {
                h1 = Some(hr);
            }
        }
        self.table.publish(&mut g, slot, h0, h1);
        let c = g.conns[slot as usize];
        if c.nat != 0 {
            self.nat_frame(frame, pkt, &c, false);
        }
        Commit::Done(Hit {
            g,
            home,
            slot,
            reply: false,
        })
    }

    /// The `+snat`/`+dnat` bits a packet of `c` in this direction gets.
    #[inline]
    fn nat_bits(&self, c: &Conn, reply: bool) -> u8 {
        match (c.nat, reply) {
            (conn::NAT_SRC, false) | (conn::NAT_DST, true) => state::SNAT,
            (conn::NAT_DST, false) | (conn::NAT_SRC, true) => state::DNAT,
            _ => 0,
        }
    }

    /// Translate the frame as connection `c` says for this direction;
    /// returns the state bits.
    #[inline]
    fn nat_frame(&self, frame: &mut [u8], pkt: &view::Pkt, c: &Conn, reply: bool) -> u8 {
        let bits = self.nat_bits(c, reply);
        if bits == 0 {
            return 0;
        }
        // Packets of this direction leave with the reverse of the other
        // direction's key.
        let target = c.keys[usize::from(!reply)].reverse();
        view::nat(frame, pkt, &target);
        bits
    }

    /// Expire up to `budget` idle connections; returns how many. Called by
    /// the control thread, never from a forwarding lcore's burst: it holds
    /// one shard's lock for at most 64 slots at a time.
    pub fn sweep(&self, now_ms: u64, budget: usize) -> usize {
        self.table.sweep(now_ms, budget)
    }

    /// Connections, of one zone or all (expired ones not yet swept are
    /// left out).
    pub fn dump(&self, zone: Option<u16>, now_ms: u64) -> Vec<ConnInfo> {
        let mut out = Vec::new();
        self.table.for_each(zone, |c, label| {
            if c.expires > now_ms {
                out.push(ConnInfo {
                    zone: c.keys[0].zone(),
                    orig: c.keys[0].tuple(),
                    reply: c.keys[1].tuple(),
                    state: c.state_name(),
                    mark: c.mark,
                    label,
                    expires_in_ms: c.expires - now_ms,
                });
            }
        });
        out
    }

    /// Remove connections, of one zone or all; returns how many.
    pub fn flush(&self, zone: Option<u16>) -> usize {
        self.table.flush(zone)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let (committed, invalid, expired) = self.table.counters();
        Stats {
            entries: self.table.len(),
            committed,
            invalid: invalid + self.invalid.load(Ordering::Relaxed),
            limit_drops: self.limit_drops.load(Ordering::Relaxed),
            expired,
        }
    }

    /// Limit a zone's connections (None: back to the default). `Some(0)`
    /// refuses every commit in the zone.
    pub fn set_zone_limit(&self, zone: u16, limit: Option<u32>) {
        self.table.zones.set_limit(zone, limit);
    }

    /// Connections in `zone`.
    pub fn zone_count(&self, zone: u16) -> u32 {
        self.table.zones.count(zone)
    }
}

#[cfg(test)]
mod tests;
