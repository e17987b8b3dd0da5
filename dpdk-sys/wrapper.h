/* Every DPDK header dsrlb needs. bindgen reads this; the static inline functions it
 * finds are wrapped in C by bindgen's wrap_static_fns and compiled by build.rs. */
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>

/* rte_errno is a thread-local macro: read it through a real function, on the thread
 * whose call failed. */
int dsrlb_rte_errno(void);
