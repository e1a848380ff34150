//! The `baton` command line, without DPDK or root: `check` and `stats`
//! errors, help, and the example configs.

use std::path::Path;
use std::process::{Command, Output};

fn baton(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .output()
        .expect("run baton")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn check_accepts_every_example_and_prints_the_resolved_config() {
    for name in ["metal.toml", "netns-demo.toml", "cluster-node.toml"] {
        let out = baton(&["check", "--config", &example(name)]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Defaults are filled in: the file prefix and stats socket appear
        // even though the examples leave them out.
        assert!(stdout.contains("file_prefix = "), "{name}:\n{stdout}");
        assert!(stdout.contains("socket = "), "{name}:\n{stdout}");
        // And what it prints is itself a valid config.
        let dir = tempfile::tempdir().unwrap();
        let resolved = dir.path().join("resolved.toml");
        std::fs::write(&resolved, stdout.as_bytes()).unwrap();
        let again = baton(&["check", "--config", resolved.to_str().unwrap()]);
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    }
}

#[test]
fn check_rejects_a_malformed_config_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        // (config, expected location and key, expected words)
        (
            "[node]\nname = \"n1\"\n[lcores]\nworkers = [1]\n[wire]\npci = \"0000:3b:00.0\"\n[host]\nnmae = \"x\"\n",
            "bad.toml:8:1: `host.nmae`",
            "did you mean `name`",
        ),
        (
            "[node]\nname = \"n1\"\n[lcores]\ncontrol = 1\nworkers = [1]\n[wire]\npci = \"0000:3b:00.0\"\n",
            "bad.toml:5:",
            "`lcores.workers`",
        ),
        (
            "[node]\nname = \"n1\"\n[lcores]\nworkers = [1]\n[wire]\npci = \"zz:00.0\"\n",
            "bad.toml:6:7: `wire.pci`",
            "PCI",
        ),
        ("[node\nname = 1\n", "bad.toml:1:", ""),
        // What `run` would refuse when it builds the policy, `check`
        // refuses too, at its key.
        (
            concat!(
                "[node]\nname = \"n1\"\n[lcores]\nworkers = [1]\n[wire]\npci = \"0000:3b:00.0\"\n",
                "[host]\naddress = \"198.18.0.11/24\"\n",
                "[cluster]\npsk_file = \"/etc/baton/cluster.key\"\n",
                "peers = [{ name = \"n2\", address = \"198.18.0.12\", mac = \"02:00:00:00:00:02\" }]\n",
                "[handoff]\nservices = [{ port = 80, kind = \"http\" }]\n",
                "pools = [{ name = \"b\", nodes = [\"n2\"], strategy = \"lard\", lard_low = 0 }]\n",
                "rules = [{ host = \"b.example\", sni = \"b.example\", pool = \"b\" }]\n",
            ),
            "bad.toml:14:",
            "`handoff.pools.lard_low`",
        ),
    ];
    for (text, location, words) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = baton(&["check", "--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "one line, got:\n{stderr}");
        assert!(stderr.contains(location), "want {location:?} in {stderr}");
        assert!(stderr.contains(words), "want {words:?} in {stderr}");
    }
}

#[test]
fn run_with_a_bad_config_exits_2_before_touching_dpdk() {
    let out = baton(&["run", "--config", "/nonexistent/baton.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/baton.toml: cannot read"),
        "{stderr}"
    );
}

#[test]
fn stats_without_a_running_instance_says_what_to_check() {
    let out = baton(&["stats", "--socket", "/nonexistent/baton.sock"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("is `baton run` up"), "{stderr}");
}

#[test]
fn help_names_every_command() {
    let out = baton(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "stats"] {
        assert!(stdout.contains(cmd), "{stdout}");
    }
}
