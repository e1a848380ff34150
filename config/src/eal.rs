//! EAL arguments Baton sets itself from config keys, so
//! `dpdk.extra_eal_args` cannot contradict them.

/// (option, the config key that controls it).
const RESERVED: &[(&str, &str)] = &[
    ("-l", "`lcores.control` and `lcores.workers`"),
    ("--lcores", "`lcores.control` and `lcores.workers`"),
    ("-c", "`lcores.control` and `lcores.workers`"),
    ("--main-lcore", "`lcores.control`"),
    ("--file-prefix", "`dpdk.file_prefix`"),
    ("--no-huge", "`dpdk.hugepages = false`"),
    (
        "--huge-unlink",
        "`dpdk.hugepages` (Baton always unlinks hugepage files, so none outlive it)",
    ),
    ("-m", "`dpdk.memory_mb`"),
    ("--vdev", "`wire.vdev` (and `host.kind` for the host port)"),
    ("-a", "`wire.pci`"),
    ("--allow", "`wire.pci`"),
    (
        "--no-pci",
        "`wire.vdev` (Baton adds --no-pci itself for a vdev wire port)",
    ),
];

/// If `arg` sets an option Baton owns, returns (that option, the key to
/// use instead). Catches attached values (`-l1-3`, `--file-prefix=x`) and
/// the abbreviations getopt accepts (`--file-pre=x`).
pub(crate) fn reserved(arg: &str) -> Option<(&'static str, &'static str)> {
    let arg = arg.trim_start();
    if let Some(long) = arg.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(name, _)| name);
        if name.is_empty() {
            return None;
        }
        RESERVED.iter().copied().find(|(option, _)| {
            option
                .strip_prefix("--")
                .is_some_and(|o| o.starts_with(name))
        })
    } else {
        RESERVED
            .iter()
            .copied()
            .find(|(option, _)| !option.starts_with("--") && arg.starts_with(option))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_owned_options_in_every_spelling() {
        let cases = [
            ("-l", "-l"),
            ("-l1-3", "-l"),
            ("--lcores=0@0", "--lcores"),
            ("-c0x3", "-c"),
            ("--main-lcore", "--main-lcore"),
            ("--file-prefix=x", "--file-prefix"),
            ("--file-pre", "--file-prefix"),
            ("--no-huge", "--no-huge"),
            ("--huge-unlink=never", "--huge-unlink"),
            ("-m512", "-m"),
            ("--vdev=net_ring0", "--vdev"),
            ("-a0000:3b:00.0", "-a"),
            ("--allow", "--allow"),
            ("--no-pci", "--no-pci"),
        ];
        for (arg, option) in cases {
            assert_eq!(reserved(arg).map(|r| r.0), Some(option), "{arg}");
        }
    }

    #[test]
    fn passes_other_options() {
        for arg in [
            "--log-level=pmd.net.tap:debug",
            "-n4",
            "--in-memory",
            "--huge-dir=/mnt/huge",
            "--iova-mode=va",
            "--",
            "512",
        ] {
            assert_eq!(reserved(arg), None, "{arg}");
        }
    }
}
