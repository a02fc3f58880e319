//! livehub-loadtest: drives real WebSocket clients against livehub hubs and reports what they
//! saw. Modes so far: `idle` (hold N idle viewers, report the hub's memory per viewer) and
//! `fanout` (N viewers in one room while a host posts as fast as the hub accepts; deliveries per
//! second, end-to-end latency, loss).

mod fanout;
mod idle;
mod reserve;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "livehub-loadtest", about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Connect N idle viewers to one room and report the hub's resident memory per viewer.
    Idle(idle::IdleArgs),
    /// N viewers in one room; a host posts comments as fast as the hub acknowledges them.
    Fanout(fanout::FanoutArgs),
    /// N buyers reserve in closed loops through the WebSocket path; reserves/s and latency.
    Reserve(reserve::ReserveArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One descriptor per simulated viewer.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.mode {
        Mode::Idle(a) => rt.block_on(idle::run(a)),
        Mode::Fanout(a) => rt.block_on(fanout::run(a)),
        Mode::Reserve(a) => rt.block_on(reserve::run(a)),
    }
}
