//! `baton`: content-aware request distribution for web clusters by rare TCP
//! handoff. See README.md.
#![forbid(unsafe_code)]

mod appliance;
mod cli;
mod eal_args;
mod host_iface;
mod logging;
mod metrics;
mod parts;
mod reload;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Exit codes: 0 success, 1 a run-time failure, 2 a bad configuration.
const EXIT_FAILURE: u8 = 1;
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match baton_config::load(&config) {
            // What `run` builds from it, built too.
            Ok(cfg) => match parts::build_all(&cfg) {
                Ok(()) => {
                    print!("{}", cfg.to_toml());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}: {e:#}", config.display());
                    ExitCode::from(EXIT_BAD_CONFIG)
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
        Command::Run { config } => {
            let cfg = match baton_config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            };
            logging::init(cfg.node.log_level.as_str());
            match appliance::run(&cfg, &config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Bench {
            workers,
            flows,
            seconds,
            paths,
            json,
            hugepages,
            file_prefix,
            memory,
        } => {
            logging::init("warn");
            if memory {
                for &n in &flows {
                    let measured = baton_bench::memory::measure(n)
                        .and_then(|m| baton_bench::memory::print(&m, json));
                    if let Err(e) = measured {
                        eprintln!("error: {e:#}");
                        return ExitCode::from(EXIT_FAILURE);
                    }
                }
                return ExitCode::SUCCESS;
            }
            let args = baton_bench::BenchArgs {
                workers,
                flows,
                seconds,
                paths,
                json,
                hugepages,
                file_prefix,
            };
            match baton_bench::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Drain { target, undo } => {
            let socket = match target.socket_path() {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            };
            match baton_control::stats::request_drain(&socket, !undo) {
                Ok(a) => {
                    if a.draining {
                        println!(
                            "node {} draining: {} flows left ({} handed in)",
                            a.node, a.flows_active, a.handed_in_active
                        );
                    } else {
                        println!("node {} no longer draining", a.node);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Reload { config, socket } => reload(&config, socket),
        Command::Stats { target, json } => {
            let socket = match target.socket_path() {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            };
            match baton_control::stats::fetch(&socket) {
                Ok(snapshot) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&snapshot).expect("serialisable")
                    );
                    ExitCode::SUCCESS
                }
                Ok(snapshot) => {
                    print!("{}", snapshot.to_table());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

/// `baton reload`: the running instance applies `config`, or refuses it
/// (exit 2: an invalid file, or a change only a restart makes).
fn reload(config: &std::path::Path, socket: Option<std::path::PathBuf>) -> ExitCode {
    let refused = |why: &dyn std::fmt::Display| {
        eprintln!("error: {why}");
        eprintln!("reload refused: the running configuration stays");
        ExitCode::from(EXIT_BAD_CONFIG)
    };
    // Without `--socket`, the file says where the instance is: it must
    // load, as for `baton check`.
    let socket = match socket {
        Some(socket) => socket,
        None => match baton_config::load(config) {
            Ok(cfg) => cfg.stats_socket(),
            Err(e) => return refused(&e),
        },
    };
    let path = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
    match baton_control::stats::request_reload(&socket, &path) {
        Ok(answer) if answer.changed.is_empty() => {
            println!(
                "node {}: {} read, nothing changed",
                answer.node, answer.file
            );
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            println!(
                "node {}: {} applied ({})",
                answer.node,
                answer.file,
                answer.changed.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(baton_control::stats::StatsError::Refused(why)) => refused(&why),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
