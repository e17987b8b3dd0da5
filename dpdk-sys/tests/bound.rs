//! Fails (to compile, hence to pass) if a function the dataplane calls stops being bound,
//! or changes signature. The static inline ones are reached through generated wrappers:
//! taking their address here also proves the wrappers were compiled and linked.
use dpdk_sys::*;
use std::os::raw::{c_char, c_int, c_uint, c_void};

#[test]
fn every_function_the_dataplane_needs_is_bound_and_linked() {
    let fast_path: [*const c_void; 8] = [
        rte_eth_rx_burst as unsafe extern "C" fn(u16, u16, *mut *mut rte_mbuf, u16) -> u16
            as *const c_void,
        rte_eth_tx_burst as unsafe extern "C" fn(u16, u16, *mut *mut rte_mbuf, u16) -> u16
            as *const c_void,
        rte_pktmbuf_alloc as unsafe extern "C" fn(*mut rte_mempool) -> *mut rte_mbuf
            as *const c_void,
        rte_pktmbuf_free as unsafe extern "C" fn(*mut rte_mbuf) as *const c_void,
        rte_pktmbuf_free_bulk as unsafe extern "C" fn(*mut *mut rte_mbuf, c_uint) as *const c_void,
        rte_lcore_id as unsafe extern "C" fn() -> c_uint as *const c_void,
        dsrlb_rte_errno as unsafe extern "C" fn() -> c_int as *const c_void,
        rte_mempool_in_use_count as unsafe extern "C" fn(*const rte_mempool) -> c_uint
            as *const c_void,
    ];
    let control_path: [*const c_void; 10] = [
        rte_eal_init as unsafe extern "C" fn(c_int, *mut *mut c_char) -> c_int as *const c_void,
        rte_eal_cleanup as unsafe extern "C" fn() -> c_int as *const c_void,
        rte_eal_remote_launch as *const c_void,
        rte_eal_wait_lcore as unsafe extern "C" fn(c_uint) -> c_int as *const c_void,
        rte_eth_dev_configure as *const c_void,
        rte_eth_rx_queue_setup as *const c_void,
        rte_eth_tx_queue_setup as *const c_void,
        rte_eth_dev_get_port_by_name as unsafe extern "C" fn(*const c_char, *mut u16) -> c_int
            as *const c_void,
        rte_eth_from_rings as *const c_void,
        rte_ring_enqueue_burst as *const c_void,
    ];
    for f in fast_path.iter().chain(control_path.iter()) {
        assert!(!f.is_null());
    }
}

#[test]
fn offload_and_rss_constants_are_bound() {
    assert_ne!(RTE_ETH_RSS_IP, 0);
    assert_ne!(RTE_ETH_RSS_TCP, 0);
    assert_ne!(RTE_ETH_RSS_UDP, 0);
    assert_eq!(LCORE_ID_ANY, u32::MAX);
    assert_eq!(RTE_PKTMBUF_HEADROOM, 128);
}

#[test]
fn rte_errno_reads_the_callers_thread_local() {
    // Not set by anything yet on this fresh thread.
    assert_eq!(unsafe { dsrlb_rte_errno() }, 0);
}
