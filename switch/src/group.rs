//! OpenFlow 1.3 groups: ALL, SELECT, INDIRECT and FAST_FAILOVER, with
//! per-group and per-bucket counters.
//!
//! Groups live in the flow table's versions (see [`crate::table`]) so a
//! rule and the groups it references are always published together; the
//! pipeline ([`crate::pipeline`]) resolves `group:N` into the chosen
//! buckets' actions when it compiles a flow, so a cached frame pays
//! nothing for a group.
//!
//! Text syntax (`ovs-ofctl add-group` style):
//! ```text
//! group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:20,actions=output:2
//! group_id=2,type=fast_failover,bucket=watch_port:1,actions=output:1,bucket=watch_port:2,actions=output:2
//! ```

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::action::{fmt_actions, parse_uint, split_top, validate_actions, Action};
use crate::key::{field as kf, FlowKey};
use crate::verdict::MAX_PORTS;

/// Highest group id (OFPG_MAX).
pub const MAX_GROUP: u32 = 0xffff_ff00;

/// Group type (OFPGT_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupType {
    /// Every bucket (multicast/flooding): each bucket its own action list.
    All,
    /// One bucket chosen by a hash of the flow's 5-tuple, weighted.
    Select,
    /// The single bucket.
    Indirect,
    /// The first bucket whose `watch_port` is up.
    FastFailover,
}

impl GroupType {
    /// `ovs-ofctl` name.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
            GroupType::FastFailover => "fast_failover",
        }
    }
}

/// One bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// SELECT: relative weight (0: never chosen). Ignored otherwise.
    pub weight: u16,
    /// FAST_FAILOVER: the bucket is live while this port is up
    /// (`None`: always live).
    pub watch_port: Option<u16>,
    /// The bucket's actions (outputs, rewrites, `group:N` to chain groups;
    /// no resubmit).
    pub actions: Vec<Action>,
}

/// A group as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Group id (0..=[`MAX_GROUP`]).
    pub id: u32,
    /// Type.
    pub kind: GroupType,
    /// Buckets, in order.
    pub buckets: Vec<Bucket>,
}

impl GroupSpec {
    /// The groups this group's buckets chain to.
    pub fn chained(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.actions.iter())
            .filter_map(|a| match a {
                Action::Group(g) => Some(*g),
                _ => None,
            })
    }

    /// Check the group on its own (OFPGMFC_INVALID_GROUP /
    /// OFPGMFC_BAD_BUCKET style messages).
    pub fn validate(&self) -> Result<(), String> {
        if self.id > MAX_GROUP {
            return Err(format!(
                "group id {} out of range (0..={MAX_GROUP})",
                self.id
            ));
        }
        if self.kind == GroupType::Indirect && self.buckets.len() != 1 {
            return Err(format!(
                "group {}: an indirect group has exactly one bucket",
                self.id
            ));
        }
        for (i, b) in self.buckets.iter().enumerate() {
            if let Some(a) = b
                .actions
                .iter()
                .find(|a| matches!(a, Action::Resubmit(_) | Action::Drop) || a.is_ct())
            {
                return Err(format!(
                    "group {} bucket {i}: `{a}` is not allowed in a bucket",
                    self.id
                ));
            }
            validate_actions(&b.actions)
                .map_err(|e| format!("group {} bucket {i}: {e}", self.id))?;
            if b.watch_port.is_some_and(|p| p >= MAX_PORTS) {
                return Err(format!(
                    "group {} bucket {i}: watch_port out of range",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

impl core::str::FromStr for GroupSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<GroupSpec, String> {
        let mut parts = s.split("bucket=");
        let head = parts.next().unwrap_or("");
        let (mut id, mut kind) = (None, None);
        for tok in head.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (k, v) = tok
                .split_once('=')
                .ok_or_else(|| format!("`{tok}`: want group_id=N or type=T"))?;
            match k.trim() {
                "group_id" => {
                    id = Some(parse_uint(v.trim(), u64::from(MAX_GROUP), "group id")? as u32)
                }
                "type" => {
                    kind = Some(match v.trim() {
                        "all" => GroupType::All,
                        "select" => GroupType::Select,
                        "indirect" => GroupType::Indirect,
                        "ff" | "fast_failover" => GroupType::FastFailover,
                        t => {
                            return Err(format!(
                                "unknown group type `{t}` (all, select, indirect, ff)"
                            ))
                        }
                    })
                }
                k => return Err(format!("unknown group keyword `{k}`")),
            }
        }
        let mut buckets = Vec::new();
        for b in parts {
            let mut bucket = Bucket {
                weight: 1,
                watch_port: None,
                actions: Vec::new(),
            };
            for tok in split_top(b.trim().trim_end_matches(',')) {
                let tok = tok.trim();
                let tok = tok.strip_prefix("actions=").unwrap_or(tok);
                if let Some(w) = tok.strip_prefix("weight:") {
                    bucket.weight = parse_uint(w, 0xffff, "weight")? as u16;
                } else if let Some(p) = tok.strip_prefix("watch_port:") {
                    bucket.watch_port =
                        Some(parse_uint(p, u64::from(MAX_PORTS - 1), "watch_port")? as u16);
                } else if tok.starts_with("bucket_id:") || tok.is_empty() {
                } else {
                    bucket.actions.push(tok.parse()?);
                }
            }
            buckets.push(bucket);
        }
        let g = GroupSpec {
            id: id.ok_or("missing group_id=N")?,
            kind: kind.ok_or("missing type=all|select|indirect|ff")?,
            buckets,
        };
        g.validate()?;
        Ok(g)
    }
}

impl fmt::Display for GroupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group_id={},type={}", self.id, self.kind.name())?;
        for b in &self.buckets {
            write!(f, ",bucket=")?;
            if self.kind == GroupType::Select {
                write!(f, "weight:{},", b.weight)?;
            }
            if let Some(p) = b.watch_port {
                write!(f, "watch_port:{p},")?;
            }
            write!(f, "actions={}", fmt_actions(&b.actions))?;
        }
        Ok(())
    }
}

/// An installed group with its per-worker counters.
pub struct Group {
    /// The configuration.
    pub spec: GroupSpec,
    /// Installation time.
    pub created_ms: u64,
    /// Per worker: `stride` words: packets, bytes, then packets/bytes per
    /// bucket; each worker's block is padded to whole cache lines.
    counters: Box<[AtomicU64]>,
    stride: usize,
}

/// Group counters as reported (OpenFlow group_stats).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupStats {
    /// Group id.
    pub id: u32,
    /// Rules referencing the group.
    pub ref_count: usize,
    /// Packets through the group.
    pub packets: u64,
    /// Bytes through the group.
    pub bytes: u64,
    /// `(packets, bytes)` per bucket.
    pub buckets: Vec<(u64, u64)>,
    /// Milliseconds since installation.
    pub duration_ms: u64,
}

impl Group {
    pub(crate) fn new(spec: GroupSpec, created_ms: u64, workers: usize) -> Group {
        let stride = (2 + 2 * spec.buckets.len()).div_ceil(8) * 8;
        Group {
            spec,
            created_ms,
            counters: (0..stride * workers).map(|_| AtomicU64::new(0)).collect(),
            stride,
        }
    }

    #[inline]
    fn bump(&self, i: usize, v: u64) {
        if let Some(c) = self.counters.get(i) {
            c.store(c.load(Relaxed) + v, Relaxed);
        }
    }

    /// Count `packets` packets of `bytes` bytes in all on `worker` (only
    /// that worker calls this): the group itself when `bucket` is
    /// `u32::MAX`, else that bucket.
    #[inline]
    pub(crate) fn hit(&self, worker: usize, bucket: u32, packets: u64, bytes: u64) {
        let base = worker * self.stride
            + if bucket == u32::MAX {
                0
            } else {
                2 + 2 * bucket as usize
            };
        self.bump(base, packets);
        self.bump(base + 1, bytes);
    }

    pub(crate) fn stats(&self, ref_count: usize, now_ms: u64) -> GroupStats {
        let workers = self.counters.len() / self.stride.max(1);
        let sum = |i: usize| -> u64 {
            (0..workers)
                .map(|w| self.counters[w * self.stride + i].load(Relaxed))
                .sum()
        };
        GroupStats {
            id: self.spec.id,
            ref_count,
            packets: sum(0),
            bytes: sum(1),
            buckets: (0..self.spec.buckets.len())
                .map(|b| (sum(2 + 2 * b), sum(3 + 2 * b)))
                .collect(),
            duration_ms: now_ms.saturating_sub(self.created_ms),
        }
    }

    /// The bucket(s) a flow takes: indices into `spec.buckets`.
    /// `key` is the flow key at the point the group runs (SELECT hashes
    /// its 5-tuple), `ports_up` the live ports (FAST_FAILOVER).
    pub(crate) fn choose(&self, key: &FlowKey, ports_up: u64, out: &mut Vec<u32>) {
        let b = &self.spec.buckets;
        match self.spec.kind {
            GroupType::All => out.extend(0..b.len() as u32),
            GroupType::Indirect => {
                if !b.is_empty() {
                    out.push(0)
                }
            }
            GroupType::FastFailover => {
                if let Some(i) = b.iter().position(|x| {
                    x.watch_port
                        .is_none_or(|p| p < MAX_PORTS && ports_up & (1 << p) != 0)
                }) {
                    out.push(i as u32)
                }
            }
            GroupType::Select => {
                let total: u64 = b.iter().map(|x| u64::from(x.weight)).sum();
                if total == 0 {
                    return;
                }
                let mut pick = five_tuple_hash(key) % total;
                for (i, x) in b.iter().enumerate() {
                    let w = u64::from(x.weight);
                    if pick < w {
                        out.push(i as u32);
                        return;
                    }
                    pick -= w;
                }
            }
        }
    }
}

/// The 5-tuple fields SELECT groups hash (dl_type, nw_proto, nw_src,
/// nw_dst, tp_src, tp_dst), as a key mask: the pipeline adds it to the
/// lookup mask when a SELECT group exists.
pub fn five_tuple_mask() -> FlowKey {
    let mut m = FlowKey::ZERO;
    m.set_range(kf::DL_TYPE, &[0xff; 2]);
    m.as_bytes_mut()[kf::NW_PROTO] = 0xff;
    m.set_range(kf::TP_SRC, &[0xff; 2]);
    m.set_range(kf::TP_DST, &[0xff; 2]);
    m.set_range(kf::NW_SRC6, &[0xff; 16]);
    m.set_range(kf::NW_DST6, &[0xff; 16]);
    m
}

/// Hash of the flow's 5-tuple (symmetric in nothing: a flow and its
/// reverse may take different buckets, as OVS's default hash does).
pub fn five_tuple_hash(key: &FlowKey) -> u64 {
    let h = key.masked(&five_tuple_mask()).hash();
    // Fold the high half in: the low bits alone index the flow cache.
    h ^ (h >> 29)
}
