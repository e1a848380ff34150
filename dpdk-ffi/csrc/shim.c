#include <stddef.h>
#define _GNU_SOURCE
#include <stdio.h>
#include <rte_config.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_ring.h>
#include "shim.h"

int baton_errno(void) { return rte_errno; }
unsigned baton_lcore_id(void) { return rte_lcore_id(); }
uint64_t baton_tsc(void) { return rte_get_tsc_cycles(); }

uint16_t baton_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t baton_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *baton_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void baton_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void baton_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned n) { rte_pktmbuf_free_bulk(pkts, n); }

/* The Rust side reads a packet's data pointer and length from these
 * offsets, inline on the per-packet path (mbuf.rs, `frame_of`); the build
 * fails here if this DPDK lays the mbuf out differently. */
_Static_assert(offsetof(struct rte_mbuf, buf_addr) == 0, "rte_mbuf.buf_addr moved");
_Static_assert(offsetof(struct rte_mbuf, data_off) == 16, "rte_mbuf.data_off moved");
_Static_assert(offsetof(struct rte_mbuf, data_len) == 40, "rte_mbuf.data_len moved");
/* ... and the checksum verdicts of the NIC from these (`checksum_bad`). */
_Static_assert(offsetof(struct rte_mbuf, ol_flags) == 24, "rte_mbuf.ol_flags moved");
_Static_assert(RTE_MBUF_F_RX_L4_CKSUM_MASK == ((1ULL << 3) | (1ULL << 8)), "L4 checksum flags moved");
_Static_assert(RTE_MBUF_F_RX_L4_CKSUM_BAD == (1ULL << 3), "L4 checksum flags moved");
_Static_assert(RTE_MBUF_F_RX_IP_CKSUM_MASK == ((1ULL << 4) | (1ULL << 7)), "IP checksum flags moved");
_Static_assert(RTE_MBUF_F_RX_IP_CKSUM_BAD == (1ULL << 4), "IP checksum flags moved");
_Static_assert(RTE_ETH_RX_OFFLOAD_IPV4_CKSUM == (1ULL << 1), "RX offload flags moved");
_Static_assert(RTE_ETH_RX_OFFLOAD_TCP_CKSUM == (1ULL << 3), "RX offload flags moved");

uint32_t baton_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
uint16_t baton_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t baton_mbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

int baton_mbuf_set_len(struct rte_mbuf *m, uint16_t len)
{
	if (m->nb_segs != 1)
		return -1;
	if (len > m->data_len && (uint32_t)(len - m->data_len) > rte_pktmbuf_tailroom(m))
		return -1;
	m->data_len = len;
	m->pkt_len = len;
	return 0;
}

unsigned baton_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n)
{
	return rte_ring_enqueue_burst(r, (void * const *)pkts, n, NULL);
}

unsigned baton_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n)
{
	return rte_ring_dequeue_burst(r, (void **)pkts, n, NULL);
}

unsigned baton_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

static baton_log_fn log_sink;

static ssize_t log_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	if (log_sink)
		log_sink(rte_log_cur_msg_loglevel(), buf, len);
	return (ssize_t)len;
}

int baton_redirect_log(baton_log_fn f)
{
	cookie_io_functions_t io = { .read = NULL, .write = log_write, .seek = NULL, .close = NULL };
	FILE *stream = fopencookie(NULL, "w", io);
	if (!stream)
		return -1;
	/* Line-buffered, so each DPDK log line reaches the sink whole. */
	setvbuf(stream, NULL, _IOLBF, 0);
	log_sink = f;
	return rte_openlog_stream(stream);
}
