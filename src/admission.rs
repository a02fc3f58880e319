//! Connection admission: what an open connection counts against, from the moment it is
//! accepted until it ends. Every accepted TCP connection, upgraded or not (a half-sent request
//! too), counts toward `server.max_connections` and, by its peer's address, toward
//! `limits.connections_per_ip`; a WebSocket session also counts toward
//! `limits.connections_per_user` by its token's `sub`. Behind a proxy listed in
//! `server.trusted_proxies` the per-IP key is the client named by `X-Forwarded-For`, counted at
//! the upgrade (the proxy's own connections are not capped per IP). An IPv6 client counts by its
//! /64 network (see [`ip_key`]): one subscriber holds a whole /64 and can pick any address in it.
//!
//! The counts are a semaphore of `server.max_connections` permits (as mini-redis's `server.rs`
//! limits its connections) and sharded maps; every count is held by a guard whose drop gives it
//! back, so no path can leak one.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Identity;
use crate::config::Config;
use crate::error::HubError;
use crate::protocol::Id;

/// Why a connection was refused; [`Refusal::reason`] is the `reason` label of
/// `livehub_connections_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The hub holds `server.max_connections` connections.
    Capacity,
    /// The client's address holds `limits.connections_per_ip` connections.
    PerIp,
    /// The token's user holds `limits.connections_per_user` WebSocket sessions.
    PerUser,
}

impl Refusal {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::PerIp => "per_ip",
            Refusal::PerUser => "per_user",
        }
    }

    /// What the client is told: 503 `unavailable` for a full hub (another node may have room),
    /// 429 `rate_limited` for a client over its own share.
    pub fn error(self) -> HubError {
        match self {
            Refusal::Capacity => {
                HubError::Unavailable("hub is at its connection limit; try another node".into())
            }
            Refusal::PerIp => HubError::RateLimited(
                "too many open connections from this address; close one first".into(),
            ),
            Refusal::PerUser => HubError::RateLimited(
                "too many open connections for this user; close one first".into(),
            ),
        }
    }
}

impl From<Refusal> for HubError {
    fn from(r: Refusal) -> Self {
        r.error()
    }
}

/// Open connections per key, at most `cap` each (0: not counted). Keys with no connection are
/// removed, so the map holds only the keys that are connected now.
struct Counter<K: Hash + Eq> {
    cap: usize,
    open: DashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Counter {
            cap,
            open: DashMap::new(),
        })
    }

    /// Counts one more connection for `key`: None when this counter is off.
    fn enter(self: &Arc<Self>, key: K) -> Result<Option<Slot<K>>, ()> {
        if self.cap == 0 {
            return Ok(None);
        }
        let mut n = self.open.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return Err(());
        }
        *n += 1;
        drop(n);
        Ok(Some(Slot {
            counter: Arc::clone(self),
            key,
        }))
    }

    fn leave(&self, key: &K) {
        if let Entry::Occupied(mut e) = self.open.entry(key.clone()) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    #[cfg(test)]
    fn count(&self, key: &K) -> usize {
        self.open.get(key).map_or(0, |n| *n)
    }
}

/// One connection's place in a [`Counter`], given back on drop.
struct Slot<K: Hash + Eq + Clone> {
    counter: Arc<Counter<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        self.counter.leave(&self.key);
    }
}

/// The hub's admission state: its caps and who holds them.
pub struct Admission {
    /// One permit per connection the hub may hold at once.
    slots: Arc<Semaphore>,
    cap: usize,
    per_ip: Arc<Counter<IpAddr>>,
    per_user: Arc<Counter<Id>>,
    trusted: Vec<IpAddr>,
}

impl Admission {
    /// Admission with `config`'s caps: the connection cap ([`Config::connection_cap`], from the
    /// open-file limit the process has now when it is automatic), per IP and per user.
    pub fn new(config: &Config) -> Arc<Self> {
        let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        let cap = config.connection_cap(nofile).min(Semaphore::MAX_PERMITS);
        let per_ip = Counter::new(config.limits.connections_per_ip);
        let per_user = Counter::new(config.limits.connections_per_user);
        let trusted = config
            .server
            .trusted_proxies
            .iter()
            .map(IpAddr::to_canonical)
            .collect();
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            per_ip,
            per_user,
            trusted,
        })
    }

    /// The most connections admitted at once: `server.max_connections`, or with 0 a little
    /// below the open-file limit.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(&ip.to_canonical())
    }

    /// Counts a connection just accepted from `peer`, or says why it must be refused. A trusted
    /// proxy's connections are not counted per IP here: their clients are, at the upgrade.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let peer = peer.to_canonical();
        let ip = if self.is_trusted(peer) {
            None
        } else {
            self.per_ip
                .enter(ip_key(peer))
                .map_err(|()| Refusal::PerIp)?
        };
        // On this refusal `ip` drops and gives the address's count back.
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return Err(Refusal::Capacity);
        };
        Ok(Ticket {
            admission: Arc::clone(self),
            peer,
            _conn: Arc::new(Admitted {
                _slot: slot,
                _ip: ip,
            }),
        })
    }
}

/// One accepted connection's counts; the last holder's drop gives them back.
struct Admitted {
    _slot: OwnedSemaphorePermit,
    _ip: Option<Slot<IpAddr>>,
}

/// An accepted connection's admission, put into each of its requests' extensions. The
/// connection counts until the connection and every request and session holding a clone end.
#[derive(Clone)]
pub struct Ticket {
    admission: Arc<Admission>,
    peer: IpAddr,
    _conn: Arc<Admitted>,
}

impl Ticket {
    /// Admits a WebSocket session for `who` on this connection: behind a trusted proxy the
    /// forwarded client's per-IP count, and the user's per-user count (anonymous viewers have
    /// none). Hold the pass until the session ends; it keeps the connection counted too.
    pub fn admit_session(
        &self,
        headers: &HeaderMap,
        who: &Identity,
    ) -> Result<SessionPass, Refusal> {
        let a = &self.admission;
        // A client's own X-Forwarded-For is not read at all.
        let client = if a.is_trusted(self.peer) {
            forwarded_client(headers, |ip| a.is_trusted(ip))
        } else {
            None
        };
        let forwarded = match client {
            Some(client) => a
                .per_ip
                .enter(ip_key(client))
                .map_err(|()| Refusal::PerIp)?,
            None => None,
        };
        let user = if who.anonymous {
            None
        } else {
            a.per_user
                .enter(who.user.clone())
                .map_err(|()| Refusal::PerUser)?
        };
        Ok(SessionPass {
            _conn: self.clone(),
            _forwarded: forwarded,
            _user: user,
        })
    }
}

/// A WebSocket session's counts (its connection's, the forwarded client's, its user's), given
/// back when the pass drops.
pub struct SessionPass {
    _conn: Ticket,
    _forwarded: Option<Slot<IpAddr>>,
    _user: Option<Slot<Id>>,
}

/// The key an address counts under for `limits.connections_per_ip`: an IPv4 address (an
/// IPv4-mapped IPv6 one too) as itself, an IPv6 address by its /64 network, the smallest block a
/// subscriber is given.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

/// The client a chain of proxies names in `X-Forwarded-For`: the right-most address that is not
/// `trusted` (each proxy appends the address it was connected from, so entries right of the
/// first untrusted one are ours and entries left of it are whatever the client sent). None
/// without the header, when every entry is trusted, or when that entry is not an address.
pub fn forwarded_client(headers: &HeaderMap, trusted: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<_>>()?;
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let ip = parse_forwarded_ip(entry.trim())?.to_canonical();
        if !trusted(ip) {
            return Some(ip);
        }
    }
    None
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_count_by_their_slash_64_and_ipv4_by_their_address() {
        assert_eq!(
            ip_key(ip("2001:db8:1:2::1")),
            ip_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_ne!(ip_key(ip("2001:db8:1:2::1")), ip_key(ip("2001:db8:1:3::1")));
        assert_eq!(ip_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(ip_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(ip_key(ip("192.0.2.7")), ip_key(ip("192.0.2.8")));
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_entry() {
        let trusted = |a: IpAddr| a == ip("10.0.0.1") || a == ip("10.0.0.2");
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["203.0.113.7"], Some("203.0.113.7")),
            (&["1.1.1.1, 203.0.113.7"], Some("203.0.113.7")),
            (&["1.1.1.1, 203.0.113.7, 10.0.0.2"], Some("203.0.113.7")),
            (&["1.1.1.1", "203.0.113.7,10.0.0.2"], Some("203.0.113.7")),
            (&["203.0.113.7", "10.0.0.1"], Some("203.0.113.7")),
            (&["10.0.0.1, 10.0.0.2"], None),
            (&["garbage, 203.0.113.7"], Some("203.0.113.7")),
            (&["203.0.113.7, garbage"], None),
            (&["203.0.113.7:4711"], Some("203.0.113.7")),
            (&["[2001:db8::1]:4711"], Some("2001:db8::1")),
            (&["2001:db8::1"], Some("2001:db8::1")),
            (&["::ffff:203.0.113.7"], Some("203.0.113.7")),
        ];
        for (values, want) in cases {
            assert_eq!(
                forwarded_client(&xff(values), trusted),
                want.map(ip),
                "{values:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_forwarded_client_is_never_trusted_and_always_one_of_the_entries(
            entries in prop::collection::vec((0u8..4, any::<bool>()), 0..8),
            split in any::<bool>(),
        ) {
            let addrs: Vec<String> = entries.iter().map(|(n, port)| match port {
                true => format!("192.0.2.{n}:80"),
                false => format!("192.0.2.{n}"),
            }).collect();
            let trusted = |a: IpAddr| a == ip("192.0.2.0") || a == ip("192.0.2.1");
            let headers = match split {
                true => xff(&addrs.iter().map(String::as_str).collect::<Vec<_>>()),
                false if addrs.is_empty() => HeaderMap::new(),
                false => xff(&[&addrs.join(", ")]),
            };
            let got = forwarded_client(&headers, trusted);
            let want = entries.iter().rev().map(|(n, _)| ip(&format!("192.0.2.{n}")))
                .find(|a| !trusted(*a));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_counter_refuses_past_its_cap_and_forgets_keys_with_no_connection() {
        let c = Counter::new(2);
        let a = c.enter("a").unwrap();
        let b = c.enter("a").unwrap();
        assert!(c.enter("a").is_err());
        assert!(c.enter("b").unwrap().is_some());
        drop(a);
        let again = c.enter("a").unwrap();
        drop((b, again));
        assert_eq!(c.count(&"a"), 0);
        assert!(c.open.is_empty());
        assert!(Counter::new(0).enter("a").unwrap().is_none(), "0: off");
    }
}
