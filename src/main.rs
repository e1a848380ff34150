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
            match appliance::run(&cfg) {
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
