//! The Redis backend's key names and index members, in one place (docs/redis.md, "Key layout"):
//! every key of one deal shares the hash tag of its room's order-feed partition,
//! `{PREFIX:pNN}` (NN = [`partition`] of the room, one of [`FEED_PARTITIONS`]), with the feed
//! stream itself, so a deal's script runs on one cluster slot and appends the order events it
//! makes to the feed in the same atomic step (issue 23). The indexes (`PREFIX:deals`,
//! `PREFIX:due`, a room's and a creator's deals, `PREFIX:dealref:DIGEST`) live on slots of their
//! own. Pure functions: no Redis here.
//!
//! Before issue 23 a deal's tag was `{PREFIX:ROOM:DEAL}`; deals started under that layout are
//! not read by this version (upgrade between shows: docs/redis.md).

use crate::protocol::Id;

/// The key names under one `redis.key_prefix`.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The per-deal keys, in the order the scripts expect them as `KEYS`: the deal hash, its
    /// holds (and pending orders) by expiry, the holds, the per-user counts, the order stream,
    /// the sales ledger, the orders by id, and the room's feed partition, all in the slot of
    /// `{PREFIX:pNN}`.
    pub fn deal(&self, room: &Id, deal: &Id) -> [String; 8] {
        let tag = self.tag(room, deal);
        [
            format!("{tag}:deal"),
            format!("{tag}:holds"),
            format!("{tag}:hold"),
            format!("{tag}:users"),
            format!("{tag}:orders"),
            format!("{tag}:sales"),
            format!("{tag}:ords"),
            self.feed(partition(room)),
        ]
    }

    /// `user`'s orders in `room` (order -> deal), in the slot of the room's deals. The `~`
    /// (never in an id) keeps it apart from every deal's keys, whatever the deal is called.
    pub fn buyer(&self, room: &Id, user: &Id) -> String {
        format!(
            "{{{}:p{:02}}}:{room}:~buyer:{user}",
            self.prefix,
            partition(room)
        )
    }

    /// The order feed's partition `p` (a stream).
    pub fn feed(&self, p: u32) -> String {
        format!("{{{}:p{p:02}}}:feed", self.prefix)
    }

    /// The idempotency record of one reserve (`user`, `request_id`), in the deal's slot.
    pub fn request(&self, room: &Id, deal: &Id, user: &Id, request_id: &Id) -> String {
        format!("{}:req:{user}:{request_id}", self.tag(room, deal))
    }

    fn tag(&self, room: &Id, deal: &Id) -> String {
        deal_tag(&self.prefix, room, deal)
    }

    /// `PREFIX:deals`: every deal that may still hold stock (members "ROOM|DEAL").
    pub fn registry(&self) -> String {
        format!("{}:deals", self.prefix)
    }

    /// `PREFIX:due`: deals by when they next need a sweep.
    pub fn due(&self) -> String {
        format!("{}:due", self.prefix)
    }

    /// `PREFIX:reconcile`: which node runs this period's reconciling pass.
    pub fn reconcile(&self) -> String {
        format!("{}:reconcile", self.prefix)
    }

    /// The deals that may pay `creator` (as host or affiliate), by until when they may live.
    pub fn creator(&self, creator: &Id) -> String {
        format!("{}:creator:{creator}:deals", self.prefix)
    }

    /// The room's deals by when their keys expire (`lua/index.lua`).
    pub fn room(&self, room: &Id) -> String {
        format!("{}:room:{room}:deal-index", self.prefix)
    }

    /// The set of a room's deal ids that versions before issue 19 wrote (without a lifetime);
    /// read, never written.
    pub fn legacy_room(&self, room: &Id) -> String {
        format!("{}:room:{room}:deals", self.prefix)
    }

    /// Which deal ("ROOM|DEAL") the reservation ids carrying `digest` belong to.
    pub fn dealref(&self, digest: &str) -> String {
        format!("{}:dealref:{digest}", self.prefix)
    }
}

/// The prefix of `room`'s keys beside its deals' (`{PREFIX:pNN}:ROOM`: the slot of its deals
/// and of its order feed partition), e.g. its auctions' (`ROOM:~auction:ID`; the `~` is never in
/// an id, so no deal's keys can be named alike).
pub fn room_tag(prefix: &str, room: &Id) -> String {
    format!("{{{prefix}:p{:02}}}:{room}", partition(room))
}

/// The prefix of every key of `deal` in `room` under `prefix` (`{PREFIX:pNN}:ROOM:DEAL`), for
/// operators and tests that look at the keys themselves.
pub fn deal_tag(prefix: &str, room: &Id, deal: &Id) -> String {
    format!("{{{prefix}:p{:02}}}:{room}:{deal}", partition(room))
}

/// How many partitions the order feed has: a fixed number, since a room's partition names
/// the slot of its deals' keys.
pub const FEED_PARTITIONS: u32 = 16;

/// The feed partition of `room`'s orders (and the slot of its deals' keys): FNV-1a of the room
/// id, the same on every node.
pub fn partition(room: &Id) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in room.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h % FEED_PARTITIONS
}

/// The member "ROOM|DEAL" naming a deal in the indexes.
pub fn member(room: &Id, deal: &Id) -> String {
    format!("{room}|{deal}")
}

/// The (room, deal) of an index member "ROOM|DEAL", or None when it is malformed.
pub fn deal_member(member: &str) -> Option<(Id, Id)> {
    let (room, deal) = member.split_once('|')?;
    Some((Id::new(room).ok()?, Id::new(deal).ok()?))
}

/// The deal digest a reservation id (`h` DIGEST `-` …) carries, or None when it is not one of
/// the inventory's.
pub fn reservation_digest(reservation: &Id) -> Option<&str> {
    id_digest('h', reservation)
}

/// The deal digest an order id (`o` DIGEST `-` …) carries, or None when it is not one of the
/// inventory's.
pub fn order_digest(order: &Id) -> Option<&str> {
    id_digest('o', order)
}

fn id_digest(prefix: char, id: &Id) -> Option<&str> {
    id.as_str()
        .strip_prefix(prefix)
        .and_then(|r| r.split_once('-'))
        .map(|(d, _)| d)
        .filter(|d| d.len() == 16)
}

/// A stable 64-bit digest of (room, deal) as 16 hex digits (FNV-1a), the same on every node.
pub fn deal_digest(room: &Id, deal: &Id) -> String {
    let bytes = room.as_str().bytes().chain([0u8]).chain(deal.as_str().bytes());
    format!("{:016x}", crate::id::fnv1a(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).expect("id")
    }

    #[test]
    fn a_deals_keys_share_one_hash_tag_in_the_order_the_scripts_expect() {
        let k = Keys::new("lh");
        let p = partition(&id("r"));
        assert_eq!(p, partition(&id("r")), "stable");
        let tag = format!("{{lh:p{p:02}}}");
        assert_eq!(
            k.deal(&id("r"), &id("d")),
            [
                format!("{tag}:r:d:deal"),
                format!("{tag}:r:d:holds"),
                format!("{tag}:r:d:hold"),
                format!("{tag}:r:d:users"),
                format!("{tag}:r:d:orders"),
                format!("{tag}:r:d:sales"),
                format!("{tag}:r:d:ords"),
                format!("{tag}:feed"),
            ]
        );
        assert_eq!(
            k.request(&id("r"), &id("d"), &id("u"), &id("q1")),
            format!("{tag}:r:d:req:u:q1")
        );
        assert_eq!(k.buyer(&id("r"), &id("u")), format!("{tag}:r:~buyer:u"));
        assert_eq!(k.registry(), "lh:deals");
        assert_eq!(k.due(), "lh:due");
        assert_eq!(k.reconcile(), "lh:reconcile");
        assert_eq!(k.creator(&id("c")), "lh:creator:c:deals");
        assert_eq!(k.room(&id("r")), "lh:room:r:deal-index");
        assert_eq!(k.legacy_room(&id("r")), "lh:room:r:deals");
        assert_eq!(k.dealref("00ff"), "lh:dealref:00ff");
    }

    #[test]
    fn members_and_reservation_ids_read_back() {
        assert_eq!(member(&id("r"), &id("d")), "r|d");
        assert_eq!(deal_member("r|d"), Some((id("r"), id("d"))));
        assert_eq!(deal_member("r"), None);
        assert_eq!(deal_member("r|d e"), None);
        let digest = deal_digest(&id("r"), &id("d"));
        assert_eq!(digest.len(), 16);
        assert_eq!(digest, deal_digest(&id("r"), &id("d")), "stable");
        assert_ne!(digest, deal_digest(&id("rd"), &id("x")));
        let resv = id(&format!("h{digest}-7"));
        assert_eq!(reservation_digest(&resv), Some(digest.as_str()));
        assert_eq!(reservation_digest(&id("h0123-7")), None);
        assert_eq!(reservation_digest(&id("x")), None);
        let order = id(&format!("o{digest}-3"));
        assert_eq!(order_digest(&order), Some(digest.as_str()));
        assert_eq!(order_digest(&resv), None);
    }

    #[test]
    fn rooms_spread_over_every_feed_partition() {
        let mut seen = [0u32; FEED_PARTITIONS as usize];
        for i in 0..1000 {
            seen[partition(&id(&format!("room-{i}"))) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 20), "{seen:?}");
    }
}
