//! Generates the DPDK bindings and builds the C shim for DPDK's static-inline
//! functions. DPDK 22.11 comes from Debian's `libdpdk-dev`, found by pkg-config.

use std::env;
use std::path::PathBuf;
use std::process::exit;

const INSTALL_HINT: &str = "Baton needs the DPDK 22.11 headers and libclang: run `make deps` \
     (or: apt-get install libdpdk-dev libclang-dev pkg-config)";

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // The probe also tells cargo to link DPDK's libraries.
    if pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .is_err()
    {
        eprintln!("error: DPDK 22.11 not found by pkg-config. {INSTALL_HINT}");
        exit(1);
    }

    // `baton bench` builds ports from rings with the ring PMD's own API;
    // every other PMD is loaded by EAL from DPDK's plugin directory.
    println!("cargo:rustc-link-lib=rte_net_ring");

    // pkg-config gives include paths, `-include rte_config.h` and -march; the
    // shim and bindgen must see exactly what DPDK's own users see.
    let cflags: Vec<String> = pkg_config_output(&["--cflags", "libdpdk"]);

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").opt_level(2).warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("baton_dpdk_shim");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Icsrc")
        .allowlist_function("rte_eal_.*|rte_eth_.*|rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count|rte_lcore_count|rte_socket_id|rte_get_tsc_hz|rte_strerror|rte_version|rte_dev_probe|rte_dev_remove|rte_ring_create|rte_ring_free|rte_eth_from_rings|rte_log_set_global_level|rte_openlog_stream|rte_lcore_is_enabled|rte_get_main_lcore|baton_.*")
        .allowlist_var("RING_F_SP_ENQ|RING_F_SC_DEQ|RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_ETHER_ADDR_LEN|RTE_ETH_.*|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM|RTE_LOG_.*|SOCKET_ID_ANY")
        .allowlist_type("rte_eth_.*|rte_ether_addr|rte_mbuf|rte_mempool")
        .opaque_type("rte_mbuf|rte_mempool|rte_ring")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate();
    match bindings {
        Ok(b) => b
            .write_to_file(out.join("bindings.rs"))
            .expect("write bindings"),
        Err(e) => {
            eprintln!("error: cannot generate DPDK bindings ({e}). {INSTALL_HINT}");
            exit(1);
        }
    }
}

fn pkg_config_output(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            eprintln!("error: cannot run pkg-config ({e}). {INSTALL_HINT}");
            exit(1);
        });
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
