//! `livehub report`: the post-show report. It reads the room's funnel and timeline from the hub
//! (`GET /api/rooms/{room}/funnel` and `/timeline`, with a host or admin token), has
//! [`crate::report::render`] turn them into one self-contained HTML file, writes it and prints
//! the path it wrote. Failures are one line on stderr, with the exit status of `livehub host`:
//! 1 refused, 2 usage, 3 unreachable.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use super::connect::HubUrl;
use crate::protocol::Id;

use crate::funnel::view::{RoomFunnel, Timeline};
use crate::report::render;

/// Arguments of `livehub report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The hub's base URL: ws://HOST:PORT or http://HOST:PORT.
    #[arg(long, env = "LIVEHUB_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// The room to report on.
    #[arg(long)]
    room: String,
    /// A host token for the room, or an admin token (`livehub token --role host ...`).
    #[arg(long, env = "LIVEHUB_TOKEN")]
    token: String,
    /// Where to write the report [default: report-ROOM.html].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Reads `what` (the hub's answer at `path`) as `T`, or says the hub answered something else.
fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T, CliError> {
    serde_json::from_str(body).map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "the hub's {what} is not the JSON this report reads ({e}); is the hub older than livehub report?"
        ))
    })
}

/// Runs `livehub report`: fetches, renders, writes the file, prints its path.
pub async fn run(args: ReportArgs) -> Result<(), CliError> {
    let hub = HubUrl::parse(&args.url)?;
    let room = Id::new(args.room).map_err(|e| CliError::Usage(format!("room: {e}")))?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("report-{room}.html")));
    let funnel_body =
        super::rest::get(&hub, &format!("/api/rooms/{room}/funnel"), &args.token).await?;
    let funnel: RoomFunnel = parse("funnel", &funnel_body)?;
    let timeline_body =
        super::rest::get(&hub, &format!("/api/rooms/{room}/timeline"), &args.token).await?;
    let timeline: Timeline = parse("timeline", &timeline_body)?;
    let page = render(&funnel, &timeline);
    std::fs::write(&out, page).map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "writing {}: {}",
            out.display(),
            super::error::io_reason(&e)
        ))
    })?;
    println!("{}", out.display());
    Ok(())
}
