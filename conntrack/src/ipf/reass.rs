//! The datagram out of its fragments, and the tracker's translation back
//! into the fragments (`ipf_reassemble_v4_frags`,
//! `ipf_reassemble_v6_frags`, `ipf_post_execute_reass_pkts` in OVS's
//! `lib/ipf.c`).

use super::FragPos;
use crate::checksum::{self, Delta};
use crate::packet::{ipv4, ipv6};

/// Build the datagram of a complete list into `out` (cleared first; its
/// capacity is reused): the first fragment's frame up to its data, then
/// every fragment's data in order (`frags`: each fragment's frame and
/// place, by first data byte). IPv4: total length set, more-fragments
/// cleared, header checksum recomputed. IPv6: the fragment header removed
/// (RFC 8200 §4.5 "Reassembly"), the header naming it names its next
/// header, payload length set. Returns false if the pieces do not fit
/// (`out` is then unusable).
pub fn reassemble<'a>(
    v6: bool,
    l3: usize,
    mut frags: impl Iterator<Item = (&'a [u8], FragPos)>,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let Some((f0, p0)) = frags.next() else {
        return false;
    };
    let (data, len) = (p0.data as usize, p0.len as usize);
    let Some(first) = f0.get(..data + len) else {
        return false;
    };
    if v6 {
        let fh = p0.frag_hdr as usize;
        let names = p0.names_frag as usize;
        if fh < l3 + ipv6::LEN || fh + 8 != data || names >= fh {
            return false;
        }
        out.extend_from_slice(&first[..fh]);
        out.extend_from_slice(&first[data..]);
        out[names] = first[fh];
    } else {
        if l3 + ipv4::MIN_LEN > data {
            return false;
        }
        out.extend_from_slice(first);
    }
    for (f, p) in frags {
        let Some(d) = f.get(p.data as usize..(p.data + p.len) as usize) else {
            return false;
        };
        out.extend_from_slice(d);
    }
    let ip_len = out.len() - l3;
    if v6 {
        let Ok(plen) = u16::try_from(ip_len - ipv6::LEN) else {
            return false;
        };
        let at = l3 + ipv6::PAYLOAD_LEN.start;
        out[at..at + 2].copy_from_slice(&plen.to_be_bytes());
    } else {
        let Ok(total) = u16::try_from(ip_len) else {
            return false;
        };
        let h = &mut out[l3..data];
        h[ipv4::LENGTH].copy_from_slice(&total.to_be_bytes());
        h[ipv4::FLG_OFF.start] &= !((ipv4::MF >> 8) as u8);
        h[ipv4::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = !checksum::fold(checksum::sum(h));
        h[ipv4::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    true
}

/// Carry the tracker's changes to the datagram (`reass`, its IP header at
/// `l3`, built by [`reassemble`] from a first fragment at the same `l3`)
/// back into one of its fragments (`frag`, its IP header at `l3`, `pos`
/// its place; `first`: the fragment whose data starts the datagram): the
/// addresses (IPv4: header checksum updated, RFC 1624), and for the first
/// fragment its data bytes (ports, L4 checksum, an ICMP header), as OVS
/// does. Out-of-range offsets change nothing.
pub fn write_back(v6: bool, reass: &[u8], frag: &mut [u8], l3: usize, pos: &FragPos, first: bool) {
    if v6 {
        let r = l3 + ipv6::SRC.start..l3 + ipv6::DST.end;
        if let (Some(src), Some(dst)) = (reass.get(r.clone()), frag.get_mut(r)) {
            dst.copy_from_slice(src);
        }
    } else {
        let r = l3 + ipv4::SRC.start..l3 + ipv4::DST.end;
        let c = l3 + ipv4::CHECKSUM.start;
        if let (Some(new), Some(old)) = (reass.get(r.clone()), frag.get(r.clone())) {
            if new != old && c + 2 <= frag.len() {
                let mut d = Delta::default();
                d.add(old, new);
                let hc = u16::from_be_bytes([frag[c], frag[c + 1]]);
                frag[c..c + 2].copy_from_slice(&d.apply(hc).to_be_bytes());
                frag[r].copy_from_slice(new);
            }
        }
    }
    if first {
        let (data, len) = (pos.data as usize, pos.len as usize);
        let rdata = if v6 { data.wrapping_sub(8) } else { data };
        if let (Some(src), Some(dst)) = (
            reass.get(rdata..rdata.saturating_add(len)),
            frag.get_mut(data..data + len),
        ) {
            dst.copy_from_slice(src);
        }
    }
}
