/*
 * dpdk-sys shim: DPDK's fast path is written as `static inline` functions in
 * its headers, which have no symbol in the shared libraries. Each one used from
 * Rust gets a thin out-of-line wrapper here, named `shim_<original name>`.
 *
 * Only burst-granular calls go through the shim (one call per up-to-32
 * packets); per-packet accessors (data pointer, lengths) are computed in Rust
 * from the rte_mbuf layout bindgen emits, so no per-packet call is added.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp);
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count);
void shim_rte_pktmbuf_free(struct rte_mbuf *m);
void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);
/* rte_pktmbuf_free_bulk with a fast path: a burst of direct, one-segment,
 * refcnt-1 mbufs of one pool goes back with one rte_mempool_put_bulk. */
void shim_rte_pktmbuf_free_bulk_fast(struct rte_mbuf **mbufs, unsigned int count);
struct rte_mbuf *shim_rte_pktmbuf_clone(struct rte_mbuf *md, struct rte_mempool *mp);
void shim_rte_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
uint16_t shim_rte_mbuf_refcnt_read(const struct rte_mbuf *m);
char *shim_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *shim_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int shim_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t shim_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t shim_rte_pktmbuf_tailroom(const struct rte_mbuf *m);

unsigned int shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                         unsigned int n, unsigned int *free_space);
unsigned int shim_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                         unsigned int n, unsigned int *available);
unsigned int shim_rte_ring_count(const struct rte_ring *r);

unsigned int shim_rte_lcore_id(void);
uint64_t shim_rte_get_tsc_hz(void);
int shim_rte_errno(void);

/*
 * The vhost fast path of dpdk/src/vring: a virtio-net header (VIRTIO 1.2
 * §5.1.6, `struct virtio_net_hdr`, 10 bytes) to and from an mbuf's offload
 * fields, with the semantics of lib/vhost's vhost_dequeue_offload (compliant
 * offload flags, as net_vhost asks for) and virtio_enqueue_offload. Called
 * only for frames that carry an offload (the common case is decided in Rust).
 */
void shim_vhost_hdr_to_mbuf(const void *hdr, struct rte_mbuf *m);
void shim_vhost_mbuf_to_hdr(struct rte_mbuf *m, void *hdr);

#endif
