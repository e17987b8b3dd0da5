//! Raw bindings to DPDK 22.11 as shipped by Debian. Nothing safe, nothing clever:
//! the safe layer is `dataplane::dpdk`.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all, improper_ctypes, unsafe_op_in_unsafe_fn, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
