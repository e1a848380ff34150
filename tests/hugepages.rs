//! No DPDK file outlives Baton: after `baton run` and `baton bench` on real
//! hugepages stop (SIGTERM, or SIGKILL and then a restart with the same
//! file prefix), no hugetlbfs mount holds a hugepage file of theirs, their
//! runtime directory is gone, and every page they took is free again.
//! Needs root; reserves a bounded number of 2 MiB pages if too few are
//! free, and mounts /dev/hugepages if no hugetlbfs is mounted, undoing
//! both at the end.

mod testbed;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testbed::{baton_bin, node_ip, Testbed};

const NR_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
const FREE_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
/// What the test needs free: the benchmark maps 1 GiB (`-m 1024`), a
/// testbed node 128 MiB, and DPDK rounds up.
const PAGES_NEEDED: u64 = 600;

fn read_number(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn free_pages() -> u64 {
    read_number(FREE_HUGEPAGES)
}

fn hugetlbfs_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .expect("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "hugetlbfs").then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// 2 MiB pages reserved and hugetlbfs mounted for the test; what it
/// changed is put back when dropped.
struct Reservation {
    previous_nr: Option<u64>,
    mounted: Option<PathBuf>,
}

impl Reservation {
    fn take() -> Reservation {
        let mut r = Reservation {
            previous_nr: None,
            mounted: None,
        };
        let free = free_pages();
        if free < PAGES_NEEDED {
            let nr = read_number(NR_HUGEPAGES);
            r.previous_nr = Some(nr);
            let wanted = nr + (PAGES_NEEDED - free);
            std::fs::write(NR_HUGEPAGES, wanted.to_string()).expect("reserve hugepages");
        }
        assert!(
            free_pages() >= PAGES_NEEDED,
            "the kernel could give only {} free 2 MiB pages of {PAGES_NEEDED}",
            free_pages()
        );
        if hugetlbfs_mounts().is_empty() {
            let dir = PathBuf::from("/dev/hugepages");
            std::fs::create_dir_all(&dir).expect("mkdir /dev/hugepages");
            let st = Command::new("mount")
                .args(["-t", "hugetlbfs", "nodev"])
                .arg(&dir)
                .status()
                .expect("mount");
            assert!(st.success(), "mount -t hugetlbfs failed");
            r.mounted = Some(dir);
        }
        r
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(dir) = &self.mounted {
            let _ = Command::new("umount").arg(dir).status();
        }
        if let Some(nr) = self.previous_nr {
            let _ = std::fs::write(NR_HUGEPAGES, nr.to_string());
        }
    }
}

/// Every hugepage file whose name starts with `prefix`, in every mount.
fn hugepage_files(prefix: &str) -> Vec<PathBuf> {
    hugetlbfs_mounts()
        .iter()
        .filter_map(|m| std::fs::read_dir(m).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

fn runtime_dir(prefix: &str) -> PathBuf {
    Path::new("/var/run/dpdk").join(prefix)
}

/// Fails unless nothing of `prefix` is left and every page is free again.
fn assert_nothing_left(prefix: &str, free_before: u64, after: &str) {
    let files = hugepage_files(prefix);
    assert!(
        files.is_empty(),
        "{after}: {} hugepage file(s) of {prefix} left, e.g. {:?}",
        files.len(),
        files.first()
    );
    let dir = runtime_dir(prefix);
    assert!(
        !dir.exists(),
        "{after}: runtime directory {} left",
        dir.display()
    );
    let free = free_pages();
    println!("{after}: free 2 MiB pages {free} (before: {free_before})");
    assert!(
        free >= free_before,
        "{after}: {} hugepages still taken",
        free_before - free
    );
}

/// Waits (bounded) until some hugepages are taken: the process runs on them.
fn wait_pages_taken(free_before: u64, what: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let free = free_pages();
        if free < free_before {
            println!(
                "{what}: {} 2 MiB pages taken while it runs",
                free_before - free
            );
            return free_before - free;
        }
        assert!(Instant::now() < deadline, "{what} took no hugepage");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bench(prefix: &str, seconds: &str) -> Child {
    Command::new(baton_bin())
        .args([
            "bench",
            "--hugepages",
            "--file-prefix",
            prefix,
            "--flows",
            "1000",
            "--paths",
            "passthrough",
            "--seconds",
            seconds,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baton bench")
}

fn kill(child: &mut Child, signal: &str) {
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let _ = child.wait();
}

#[test]
fn run_and_bench_leave_no_hugepage_or_runtime_file() {
    if !testbed::available("run_and_bench_leave_no_hugepage_or_runtime_file") {
        return;
    }
    let _reservation = Reservation::take();
    let free_before = free_pages();

    // `baton run`, one testbed node on hugepages.
    let tb = Testbed::up_with_hugepages(1);
    let prefix = format!("baton-{}-n1", tb.id);
    let serves = |when: &str| {
        let body = tb
            .fetch(&format!("http://{}/node.txt", node_ip(1)), 10)
            .unwrap_or_else(|| panic!("{when}: node 1 did not answer; log:\n{}", tb.log(1)));
        assert_eq!(String::from_utf8_lossy(&body).trim(), "node1");
    };
    serves("on hugepages");
    wait_pages_taken(free_before, "baton run");
    tb.stop_baton(1);
    assert_nothing_left(&prefix, free_before, "baton run stopped by SIGTERM");

    tb.start_baton(1);
    serves("started again");
    tb.kill_baton(1);
    let files = hugepage_files(&prefix);
    assert!(
        files.is_empty(),
        "baton run killed: {} hugepage files left",
        files.len()
    );
    println!(
        "baton run killed: runtime directory left until the next start: {}",
        runtime_dir(&prefix).exists()
    );
    tb.start_baton(1);
    serves("started after SIGKILL");
    tb.stop_baton(1);
    assert_nothing_left(&prefix, free_before, "baton run killed, started, stopped");
    drop(tb);

    // `baton bench`, with a prefix of this test's own.
    let prefix = format!("baton-bench-test-{}", std::process::id());
    let out = bench(&prefix, "0.2").wait_with_output().expect("bench");
    assert!(
        out.status.success(),
        "baton bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&prefix, free_before, "baton bench finished");

    for signal in ["-TERM", "-KILL"] {
        let mut child = bench(&prefix, "30");
        wait_pages_taken(free_before, "baton bench");
        kill(&mut child, signal);
        // A bench grows its memory while it runs; killed between creating
        // a page's file and unlinking it (DPDK's --huge-unlink), it leaves
        // that one file, which the next start removes (checked below).
        println!(
            "baton bench killed ({signal}): {} hugepage files left until the next start",
            hugepage_files(&prefix).len()
        );
        let out = bench(&prefix, "0.2").wait_with_output().expect("bench");
        assert!(
            out.status.success(),
            "baton bench after {signal} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_nothing_left(
            &prefix,
            free_before,
            &format!("baton bench killed ({signal}), run again"),
        );
    }
}
