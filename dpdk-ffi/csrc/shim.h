/* Real symbols for DPDK's static-inline functions and macros. Each is a
 * one-line forward; see shim.c. */
#ifndef BATON_SHIM_H
#define BATON_SHIM_H
#include <stdint.h>
#include <stdio.h>

struct rte_mbuf;
struct rte_mempool;

int baton_errno(void);
unsigned baton_lcore_id(void);
uint64_t baton_tsc(void);
uint16_t baton_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t baton_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *baton_pktmbuf_alloc(struct rte_mempool *mp);
void baton_pktmbuf_free(struct rte_mbuf *m);
void baton_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned n);
uint32_t baton_mbuf_pkt_len(const struct rte_mbuf *m);
uint16_t baton_mbuf_nb_segs(const struct rte_mbuf *m);
uint16_t baton_mbuf_tailroom(const struct rte_mbuf *m);
/* Grows (len > current) or shrinks the single-segment packet; -1 if it does not fit. */
int baton_mbuf_set_len(struct rte_mbuf *m, uint16_t len);

struct rte_ring;
unsigned baton_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n);
unsigned baton_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts, unsigned n);
unsigned baton_ring_count(const struct rte_ring *r);

/* Sends DPDK's log lines to Baton's logger instead of stderr. */
/* level is DPDK's RTE_LOG_* of the message (1 = emergency ... 8 = debug). */
typedef void (*baton_log_fn)(int level, const char *buf, size_t len);
int baton_redirect_log(baton_log_fn f);
#endif
