/* Out-of-line wrappers for DPDK's static-inline functions; see shim.h. */
#include "shim.h"

#include <string.h>
#include <stddef.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ip.h>
#include <rte_net.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_sctp.h>
#include <linux/virtio_net.h>

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void shim_rte_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	rte_pktmbuf_free_bulk(mbufs, count);
}

/*
 * DPDK's MBUF_FAST_FREE idea, checked instead of promised: when every mbuf
 * of the burst is direct (no indirect or external buffer), has refcnt 1,
 * one segment (next NULL, nb_segs 1) and comes from the first one's pool,
 * the mbufs are already in the state a pool keeps them in
 * (rte_pktmbuf_prefree_seg would change nothing), so one
 * rte_mempool_put_bulk returns them; the checks only load (the generic
 * path stores each mbuf into a pending array first). Anything else goes
 * through rte_pktmbuf_free_bulk.
 */
void shim_rte_pktmbuf_free_bulk_fast(struct rte_mbuf **mbufs, unsigned int count)
{
	struct rte_mempool *mp;
	unsigned int i;

	if (count == 0)
		return;
	mp = mbufs[0]->pool;
	for (i = 0; i < count; i++) {
		const struct rte_mbuf *m = mbufs[i];

		if (unlikely(m->pool != mp || m->nb_segs != 1 || m->next != NULL ||
			     !RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1)) {
			rte_pktmbuf_free_bulk(mbufs, count);
			return;
		}
	}
	rte_mempool_put_bulk(mp, (void **)mbufs, count);
}

struct rte_mbuf *shim_rte_pktmbuf_clone(struct rte_mbuf *md, struct rte_mempool *mp)
{
	return rte_pktmbuf_clone(md, mp);
}

void shim_rte_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{
	rte_mbuf_refcnt_update(m, value);
}

uint16_t shim_rte_mbuf_refcnt_read(const struct rte_mbuf *m)
{
	return rte_mbuf_refcnt_read(m);
}

char *shim_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *shim_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *shim_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int shim_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

uint16_t shim_rte_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t shim_rte_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

unsigned int shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                         unsigned int n, unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, obj_table, n, free_space);
}

unsigned int shim_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                         unsigned int n, unsigned int *available)
{
	return rte_ring_dequeue_burst(r, obj_table, n, available);
}

unsigned int shim_rte_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

unsigned int shim_rte_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t shim_rte_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

int shim_rte_errno(void)
{
	return rte_errno;
}

void shim_vhost_hdr_to_mbuf(const void *h, struct rte_mbuf *m)
{
	const struct virtio_net_hdr *hdr = h;
	struct rte_net_hdr_lens hdr_lens;
	uint32_t ptype;
	int l4_supported;

	if (hdr->flags == 0 && hdr->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return;
	m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
	ptype = rte_net_get_ptype(m, &hdr_lens, RTE_PTYPE_ALL_MASK);
	m->packet_type = ptype;
	l4_supported = (ptype & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_TCP ||
		       (ptype & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_UDP ||
		       (ptype & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_SCTP;
	/* VIRTIO 1.2 §5.1.6.2.2: the device only looks at NEEDS_CSUM and
	 * ignores flag bits it does not know. */
	if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint32_t hdrlen = hdr_lens.l2_len + hdr_lens.l3_len + hdr_lens.l4_len;

		if (hdr->csum_start <= hdrlen && l4_supported) {
			m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_NONE;
		} else {
			/* Unknown protocol or tunnel: complete the checksum. */
			uint16_t csum = 0, off;

			if (hdr->csum_start >= rte_pktmbuf_pkt_len(m) ||
			    rte_raw_cksum_mbuf(m, hdr->csum_start,
					rte_pktmbuf_pkt_len(m) - hdr->csum_start, &csum) < 0)
				return;
			if (csum != 0xffff)
				csum = ~csum;
			off = hdr->csum_offset + hdr->csum_start;
			if (rte_pktmbuf_data_len(m) >= off + 2)
				*rte_pktmbuf_mtod_offset(m, unaligned_uint16_t *, off) = csum;
		}
	}
	if (hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE && hdr->gso_size != 0) {
		switch (hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
		case VIRTIO_NET_HDR_GSO_TCPV4:
		case VIRTIO_NET_HDR_GSO_TCPV6:
			if ((ptype & RTE_PTYPE_L4_MASK) != RTE_PTYPE_L4_TCP)
				break;
			m->ol_flags |= RTE_MBUF_F_RX_LRO | RTE_MBUF_F_RX_L4_CKSUM_NONE;
			m->tso_segsz = hdr->gso_size;
			break;
		case VIRTIO_NET_HDR_GSO_UDP:
			if ((ptype & RTE_PTYPE_L4_MASK) != RTE_PTYPE_L4_UDP)
				break;
			m->ol_flags |= RTE_MBUF_F_RX_LRO | RTE_MBUF_F_RX_L4_CKSUM_NONE;
			m->tso_segsz = hdr->gso_size;
			break;
		default:
			break;
		}
	}
}

void shim_vhost_mbuf_to_hdr(struct rte_mbuf *m, void *h)
{
	struct virtio_net_hdr *hdr = h;
	uint64_t csum_l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;

	memset(hdr, 0, sizeof(*hdr));
	if (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG)
		csum_l4 |= RTE_MBUF_F_TX_TCP_CKSUM;
	if (csum_l4) {
		/* VIRTIO 1.2 §5.1.6.4: with NEEDS_CSUM the L4 checksum field
		 * holds the pseudo-header sum. */
		rte_net_intel_cksum_prepare(m);
		hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		hdr->csum_start = m->l2_len + m->l3_len;
		switch (csum_l4) {
		case RTE_MBUF_F_TX_TCP_CKSUM:
			hdr->csum_offset = offsetof(struct rte_tcp_hdr, cksum);
			break;
		case RTE_MBUF_F_TX_UDP_CKSUM:
			hdr->csum_offset = offsetof(struct rte_udp_hdr, dgram_cksum);
			break;
		case RTE_MBUF_F_TX_SCTP_CKSUM:
			hdr->csum_offset = offsetof(struct rte_sctp_hdr, cksum);
			break;
		}
	}
	/* The guest cannot be asked to complete an IPv4 header checksum. */
	if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
		struct rte_ipv4_hdr *ip =
			rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);

		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	if (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG) {
		hdr->gso_type = (m->ol_flags & RTE_MBUF_F_TX_IPV4) ?
			VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
		hdr->gso_size = m->tso_segsz;
		hdr->hdr_len = m->l2_len + m->l3_len + m->l4_len;
	} else if (m->ol_flags & RTE_MBUF_F_TX_UDP_SEG) {
		hdr->gso_type = VIRTIO_NET_HDR_GSO_UDP;
		hdr->gso_size = m->tso_segsz;
		hdr->hdr_len = m->l2_len + m->l3_len + m->l4_len;
	}
}
