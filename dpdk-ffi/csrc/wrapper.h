/* The DPDK surface Baton binds. bindgen reads this header; shim.c turns the
 * static-inline functions and macros Baton needs into real symbols. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_log.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_dev.h>
#include <rte_version.h>

#include "shim.h"
