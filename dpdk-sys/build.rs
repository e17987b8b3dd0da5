//! Generates raw bindings to the system DPDK (found by the `pkg-config` program, whose
//! raw flags carry `-include rte_config.h -march=corei7` that the wrappers need) and
//! compiles C wrappers for DPDK's static inline functions.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config (apt-get install pkg-config): {e}"));
    if !out.status.success() {
        panic!(
            "pkg-config {args:?} libdpdk failed (apt-get install libdpdk-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let cflags = pkg_config(&["--cflags"]);
    let wrappers = out_dir.join("static_wrappers");

    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=errno.c");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .allowlist_function("rte_.*|dsrlb_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|LCORE_ID_ANY|SOCKET_ID_ANY")
        // Packed structs nested in packed structs cannot be laid out by rustc.
        .opaque_type("rte_arp_hdr|rte_arp_ipv4|rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_generic_hdr")
        .clang_macro_fallback()
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed over wrapper.h");
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("writing bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .file("errno.c")
        .include(env::current_dir().expect("cwd"))
        .flag("-DALLOW_EXPERIMENTAL_API")
        .flag("-Wno-deprecated-declarations")
        .flag("-Wno-duplicate-decl-specifier")
        .opt_level(3);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("dsrlb_dpdk_wrappers");

    for lib in pkg_config(&["--libs"]) {
        if let Some(dir) = lib.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }
    // Not in libdpdk.pc's list: the ring PMD, whose rte_eth_from_rings the tests use
    // to build ports from rings they feed and drain themselves.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
}
