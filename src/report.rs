//! The post-show report, a view of the funnel: [`render`] turns the room's funnel and timeline
//! (the [`crate::funnel::view`] documents) into one self-contained HTML page. Pure functions, no
//! I/O: `livehub report` (`cli/report.rs`) fetches the documents and writes the page.
//!
//! The HTML escaper ([`esc`]) and the SVG line chart ([`line_chart`]) are the ones the load
//! tester's HTML report uses too.

mod chart;
mod fmt;
mod html;
mod story;

pub use chart::line_chart;
pub use fmt::{esc, money};
pub use html::render;
