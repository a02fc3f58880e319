//! The `livehub` command line: `serve`, `init`, `token`, `host`, `report`, `orders` and `webhooks`. Results go to stdout,
//! errors to stderr as one line each (see [`error`]), and the exit status says which.

mod connect;
pub mod error;
mod host;
mod init;
mod lines;
mod orders;
mod report;
mod rest;
mod serve;
mod watch;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::auth::{Authenticator, Claims};
use crate::config::Config;
use crate::protocol::Role;

pub use error::CliError;
pub use serve::EXIT_EXPOSED;

/// livehub: the real-time hub under a live-shopping show.
#[derive(Debug, Parser)]
#[command(name = "livehub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Write a production configuration file: a random secret, no anonymous viewers, tokens
    /// must expire, no development tokens, Redis inventory.
    Init(init::InitArgs),
    /// Mint a token with the configured secret (development and load tests).
    Token(TokenArgs),
    /// The host control client: run a show from a terminal.
    Host(host::HostArgs),
    /// Write a room's post-show report: one self-contained HTML file with the funnel per
    /// channel, the timeline, deals by GMV, missed demand and the creators' commission.
    Report(report::ReportArgs),
    /// The shop's side: follow the order feed (`orders tail`).
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
    /// The order feed's receivers: `webhooks status`, `webhooks replay`.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
}

/// Arguments of `livehub token`.
#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// What the token may do.
    #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
    role: RoleArg,
    /// A room id, or * for every room (admin and merchant tokens only).
    #[arg(long)]
    room: String,
    /// User id.
    #[arg(long)]
    sub: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Configuration whose auth.secret signs the token.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The traffic channel the viewer came from (the funnel counts them there).
    #[arg(long, value_enum)]
    src: Option<SrcArg>,
    /// The affiliate creator (a user id) paid affiliate_bps of this viewer's orders.
    #[arg(long)]
    aff: Option<String>,
}

/// The channels `--src` takes (anything else would count as direct).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SrcArg {
    /// The seller's own short videos.
    ShortVideo,
    /// An influencer (creator) collaboration.
    Creator,
    /// Paid promotion.
    Paid,
    /// The LIVE feed itself.
    Live,
    /// A product card.
    ProductCard,
}

impl SrcArg {
    fn channel(self) -> crate::commerce::Channel {
        use crate::commerce::Channel;
        match self {
            SrcArg::ShortVideo => Channel::ShortVideo,
            SrcArg::Creator => Channel::Creator,
            SrcArg::Paid => Channel::Paid,
            SrcArg::Live => Channel::Live,
            SrcArg::ProductCard => Channel::ProductCard,
        }
    }
}

/// The roles a token can carry, as `--role` lists them.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    /// Watches, comments, likes and buys in its room.
    Viewer,
    /// Runs the show in its room: pins, deals, moderation, announcements.
    Host,
    /// Acts as a host in any room (with --room '*', every room).
    Admin,
    /// The shop's backend: settles orders and reads the order feed (use --room '*').
    Merchant,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Host => Role::Host,
            RoleArg::Admin => Role::Admin,
            RoleArg::Merchant => Role::Merchant,
        }
    }
}

/// Parses arguments, runs the chosen command, prints its error (if any) on stderr and returns
/// the exit status: never a backtrace, whatever `RUST_BACKTRACE` says.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => Ok(init::run(args)?),
        Command::Token(args) => token(args),
        Command::Host(args) => runtime()?.block_on(host::run(args)),
        Command::Report(args) => runtime()?.block_on(report::run(args)),
        Command::Orders(command) => runtime()?.block_on(orders::run(command)),
        Command::Webhooks(command) => runtime()?.block_on(webhooks::run(command)),
    }
}

fn token(args: TokenArgs) -> Result<(), CliError> {
    let config = Config::from_env(args.config.as_deref())?;
    let exp = crate::clock::now_ms() / 1000 + args.ttl.as_secs();
    let token = Authenticator::new(&config.auth.secret, false)
        .mint(&Claims {
            sub: args.sub,
            name: args.name,
            role: args.role.into(),
            room: args.room,
            exp: Some(exp),
            src: args.src.map(|s| s.channel().as_str().to_owned()),
            aff: args
                .aff
                .map(|a| crate::protocol::Id::new(a).map(|id| id.to_string()))
                .transpose()
                .map_err(|e| CliError::Usage(format!("--aff: {e}")))?,
        })
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{token}");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(anyhow::anyhow!("starting the async runtime: {e}")))
}
