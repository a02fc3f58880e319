//! A scenario's `[funnel]` section: where its viewers come from (a share of viewers per traffic
//! channel), how likely a viewer of each channel is to tap Buy, which of them an affiliate sent,
//! and whether the channel travels as a signed claim or as the analytics-only `?src=`.
//!
//! ```toml
//! [funnel.channels.paid]
//! share = 30            # relative weight: shares are normalised over the channels listed
//! buy = 0.5             # P(a viewer of this channel taps reserve on a deal), per deal
//! aff_share = 0.5       # of this channel's viewers, the share that an affiliate sent
//! affiliates = ["bo", "cy"]   # drawn uniformly for those
//! via_query = false     # true: ?src=paid&aff=… instead of claims (the affiliate earns nothing)
//! ```
//!
//! Guarantees: [`Mix::assign`] gives every viewer index the same [`Attribution`] for a given
//! seed, whatever the shard, and draws from a random stream of its own, so adding a `[funnel]`
//! section changes no other choice of the plan. Without the section every viewer is a plain
//! viewer (no claims, counted `direct`) and buyers follow `[buyers] share` as before.

use std::collections::BTreeMap;

use livehub::commerce::Channel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::trace::Attribution;

/// The `[funnel]` section as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelSection {
    /// Channel wire name -> its traffic.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelMix>,
    /// Compare the hub's `GET /api/rooms/{room}/funnel` with the run's own ground truth after
    /// the run (the SLO `funnel_mismatch`). Default on.
    #[serde(default = "yes")]
    pub check: bool,
}

fn yes() -> bool {
    true
}

/// One channel's viewers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMix {
    /// Relative share of the show's viewers (>= 0); normalised over every channel listed.
    pub share: f64,
    /// Probability (0..=1) that a viewer of this channel taps reserve on a deal, drawn per deal:
    /// it replaces `[buyers] share` for this channel (timing, checkout and cancel still come
    /// from `[buyers]`). Unset: `[buyers] share`.
    #[serde(default)]
    pub buy: Option<f64>,
    /// Share (0..=1) of this channel's viewers that carry an affiliate, drawn from `affiliates`.
    #[serde(default)]
    pub aff_share: f64,
    #[serde(default)]
    pub affiliates: Vec<String>,
    /// Send the channel (and affiliate) in the URL query instead of signed claims.
    #[serde(default)]
    pub via_query: bool,
}

/// A checked `[funnel]` section, ready to assign viewers.
#[derive(Clone, Debug)]
pub struct Mix {
    /// (channel, cumulative normalised share, its settings), in [`Channel::ALL`] order.
    channels: Vec<(Channel, f64, ChannelMix)>,
    pub check: bool,
}

/// Mixes the scenario seed into the mix's own random stream.
const STREAM: u64 = 0x6675_6e6e_656c; // "funnel"

impl Mix {
    /// Checks the section: known channel names (the error names the key), finite shares >= 0
    /// summing to more than 0, probabilities within 0..=1, affiliates that are protocol ids and
    /// present whenever `aff_share` > 0, and `buy` only with a `[buyers]` section.
    pub fn new(section: &FunnelSection, has_buyers: bool) -> anyhow::Result<Mix> {
        let mut channels = Vec::new();
        for (name, c) in &section.channels {
            let key = format!("[funnel.channels.{name}]");
            let channel = Channel::ALL
                .into_iter()
                .find(|ch| ch.as_str() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "scenario: {key}: unknown channel {name:?}; the channels are {}",
                        Channel::ALL.map(Channel::as_str).join(", ")
                    )
                })?;
            anyhow::ensure!(
                c.share.is_finite() && c.share >= 0.0,
                "scenario: {key} share must be a number >= 0"
            );
            let unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
            if let Some(b) = c.buy {
                anyhow::ensure!(unit(b), "scenario: {key} buy must be 0 to 1");
                anyhow::ensure!(
                    has_buyers,
                    "scenario: {key} buy needs a [buyers] section (window_s, checkout, cancel)"
                );
            }
            anyhow::ensure!(
                unit(c.aff_share),
                "scenario: {key} aff_share must be 0 to 1"
            );
            anyhow::ensure!(
                c.aff_share == 0.0 || !c.affiliates.is_empty(),
                "scenario: {key} aff_share > 0 needs affiliates = [\"id\", …]"
            );
            for a in &c.affiliates {
                livehub::protocol::Id::new(a.as_str())
                    .map_err(|e| anyhow::anyhow!("scenario: {key} affiliates: {e}"))?;
            }
            channels.push((channel, c.share, c.clone()));
        }
        let sum: f64 = channels.iter().map(|c| c.1).sum();
        anyhow::ensure!(
            channels.is_empty() || sum > 0.0,
            "scenario: [funnel.channels] shares must sum to more than 0"
        );
        channels.sort_by_key(|c| c.0);
        let mut acc = 0.0;
        for c in channels.iter_mut() {
            acc += c.1 / sum;
            c.1 = acc;
        }
        Ok(Mix {
            channels,
            check: section.check,
        })
    }

    /// The attribution of each of `n` viewers (by viewer index), from `seed`. Every viewer
    /// takes the same three draws, so viewer i's attribution depends only on the seed and i.
    pub fn assign(&self, seed: u64, n: usize) -> Vec<Attribution> {
        let mut rng = StdRng::seed_from_u64(seed ^ STREAM);
        (0..n)
            .map(|_| {
                let (u, v, w): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
                let Some((channel, _, c)) = self
                    .channels
                    .iter()
                    .find(|c| u < c.1)
                    .or(self.channels.last())
                else {
                    return Attribution::default();
                };
                let aff = (v < c.aff_share && !c.affiliates.is_empty()).then(|| {
                    let i = ((w * c.affiliates.len() as f64) as usize).min(c.affiliates.len() - 1);
                    c.affiliates[i].clone()
                });
                Attribution {
                    channel: (*channel != Channel::Direct || c.via_query)
                        .then(|| channel.as_str().to_owned()),
                    aff,
                    via_query: c.via_query,
                }
            })
            .collect()
    }

    /// The probability that a viewer with `who` taps reserve on a deal, or `None` for the
    /// global `[buyers] share`.
    pub fn buy(&self, who: &Attribution) -> Option<f64> {
        let channel = who.counted_channel();
        self.channels
            .iter()
            .find(|c| c.0 == channel)
            .and_then(|c| c.2.buy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> FunnelSection {
        toml::from_str(toml_text).expect("section")
    }

    #[test]
    fn an_unknown_channel_is_refused_naming_its_key() {
        let e = Mix::new(&section("[channels.tv]\nshare = 1"), false).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("[funnel.channels.tv]"), "{text}");
        assert!(text.contains("short_video"), "{text}");
    }

    #[test]
    fn shares_are_normalised_and_must_sum_to_more_than_zero() {
        let e = Mix::new(
            &section("[channels.paid]\nshare = 0\n[channels.live]\nshare = 0"),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than 0"), "{e}");
        let mix = Mix::new(
            &section("[channels.paid]\nshare = 3\n[channels.live]\nshare = 1"),
            false,
        )
        .unwrap();
        let who = mix.assign(7, 4000);
        let paid = who
            .iter()
            .filter(|a| a.channel.as_deref() == Some("paid"))
            .count();
        assert!((2800..3200).contains(&paid), "{paid} of 4000 paid");
        assert!(who.iter().all(|a| a.channel.is_some() && a.aff.is_none()));
    }

    #[test]
    fn the_same_seed_gives_every_viewer_the_same_attribution() {
        let mix = Mix::new(
            &section(
                "[channels.creator]\nshare = 1\naff_share = 0.5\naffiliates = [\"bo\", \"cy\"]\n\
                 [channels.short_video]\nshare = 1\nvia_query = true",
            ),
            false,
        )
        .unwrap();
        let (a, b) = (mix.assign(3, 500), mix.assign(3, 500));
        assert_eq!(a, b);
        assert_eq!(a[..100], mix.assign(3, 100)[..]);
        assert_ne!(a, mix.assign(4, 500));
        let creators: Vec<_> = a.iter().filter(|x| x.aff.is_some()).collect();
        assert!(!creators.is_empty());
        assert!(
            creators
                .iter()
                .all(|x| x.channel.as_deref() == Some("creator"))
        );
        assert!(
            a.iter()
                .filter(|x| x.channel.as_deref() == Some("short_video"))
                .all(|x| x.via_query)
        );
    }

    #[test]
    fn buy_propensity_needs_buyers_and_falls_back_to_the_global_share() {
        let text = "[channels.paid]\nshare = 1\nbuy = 0.9\n[channels.live]\nshare = 1";
        assert!(Mix::new(&section(text), false).is_err());
        let mix = Mix::new(&section(text), true).unwrap();
        let paid = Attribution {
            channel: Some("paid".into()),
            ..Attribution::default()
        };
        let live = Attribution {
            channel: Some("live".into()),
            ..Attribution::default()
        };
        assert_eq!(mix.buy(&paid), Some(0.9));
        assert_eq!(mix.buy(&live), None);
        let bad = "[channels.paid]\nshare = 1\naff_share = 0.5";
        assert!(Mix::new(&section(bad), true).is_err());
        let bad_id = "[channels.paid]\nshare = 1\naff_share = 0.5\naffiliates = [\"a b\"]";
        assert!(Mix::new(&section(bad_id), true).is_err());
    }
}
