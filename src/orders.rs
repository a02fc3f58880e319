//! Orders as the shop's systems see them (issue 23): an order's payment status, the events of
//! the order feed (`GET /api/orders/events`, `livehub orders tail`, webhooks) and a page of it.
//!
//! Part of the wire contract: the hub writes these, the CLI and the load tester read them, and
//! a shop's backend receives them, so each is one serde type used by all of them.

use serde::{Deserialize, Serialize};

use crate::commerce::Channel;
use crate::id::Id;

/// Where an order stands. With `orders.payment = "none"` an order is `paid` when it is made;
/// with `"external"` it is `pending` until the shop's backend says `paid` or `failed`, or its
/// `pay_by` passes (`expired`). `failed` and `expired` gave their units back to the deal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Failed,
    Expired,
}

impl OrderStatus {
    /// True once the status can no longer change (`paid`, `failed`, `expired`).
    pub fn is_final(self) -> bool {
        self != OrderStatus::Pending
    }

    /// The wire name (`pending`, `paid`, `failed`, `expired`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status named `s`, as stored (its wire name).
    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Failed,
            OrderStatus::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What happened to an order: one event of the feed per change, in the order they happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OrderEventKind {
    /// The checkout made the order (`pending`, or `paid` with `orders.payment = "none"`).
    Created,
    Paid,
    Failed,
    Expired,
}

impl OrderEventKind {
    /// The event that moves an order to `status` (`created` for `pending`).
    pub fn of(status: OrderStatus) -> OrderEventKind {
        match status {
            OrderStatus::Pending => OrderEventKind::Created,
            OrderStatus::Paid => OrderEventKind::Paid,
            OrderStatus::Failed => OrderEventKind::Failed,
            OrderStatus::Expired => OrderEventKind::Expired,
        }
    }

    /// The wire name (`created`, `paid`, `failed`, `expired`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An order as the feed and the merchant endpoints show it: every amount it pays to whom, and
/// its status at the moment of the event that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDoc {
    pub id: Id,
    pub room: Id,
    pub deal: Id,
    pub product_id: Id,
    pub title: String,
    /// The buyer's user id.
    pub user: Id,
    pub qty: u32,
    pub price_cents: u64,
    pub total_cents: u64,
    pub currency: String,
    pub status: OrderStatus,
    /// Unix ms by which a `pending` order must be paid (`orders.payment = "external"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by: Option<u64>,
    /// The host creator who started the deal, paid `commission_cents`.
    pub creator: Id,
    pub channel: Channel,
    /// The buyer's affiliate, paid `affiliate_cents`.
    #[serde(default)]
    pub aff: Option<Id>,
    pub commission_cents: u64,
    pub affiliate_cents: u64,
}

/// One event of the order feed. `id` is unique and stable: a consumer's idempotency key.
/// Events of one order come in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: OrderEventKind,
    /// Unix ms when it happened (the inventory's clock: Redis's on Redis).
    pub ts: u64,
    pub order: OrderDoc,
}

/// A page of the feed (`GET /api/orders/events`): the events after the cursor asked for, and
/// the cursor to ask with next (after the last event here; the same one when there is none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersPage {
    pub events: Vec<OrderEvent>,
    pub cursor: String,
    /// True when more events were already there than this page held.
    pub more: bool,
}

/// The answer of `POST /api/orders/{order}/paid|failed`: the order as it now stands, and
/// whether this call changed it (false for a repeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub order: OrderDoc,
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_event_kinds_have_their_wire_names() {
        for (st, name, kind) in [
            (OrderStatus::Pending, "pending", "created"),
            (OrderStatus::Paid, "paid", "paid"),
            (OrderStatus::Failed, "failed", "failed"),
            (OrderStatus::Expired, "expired", "expired"),
        ] {
            assert_eq!(st.as_str(), name);
            assert_eq!(OrderStatus::parse(name), Some(st));
            assert_eq!(OrderEventKind::of(st).as_str(), kind);
            assert_eq!(serde_json::to_value(st).unwrap(), name);
        }
        assert_eq!(OrderStatus::parse("refunded"), None);
        assert!(!OrderStatus::Pending.is_final());
        assert!(OrderStatus::Expired.is_final());
    }

    #[test]
    fn an_event_reads_back_as_it_was_written_and_refuses_unknown_fields() {
        let ev = OrderEvent {
            id: "p3-1700000000000-0".into(),
            kind: OrderEventKind::Created,
            ts: 1_700_000_000_000,
            order: OrderDoc {
                id: Id::new("o1").unwrap(),
                room: Id::new("r").unwrap(),
                deal: Id::new("d").unwrap(),
                product_id: Id::new("mug").unwrap(),
                title: "Mug".into(),
                user: Id::new("ana").unwrap(),
                qty: 2,
                price_cents: 500,
                total_cents: 1000,
                currency: "USD".into(),
                status: OrderStatus::Pending,
                pay_by: Some(1_700_000_600_000),
                creator: Id::new("host").unwrap(),
                channel: Channel::Live,
                aff: None,
                commission_cents: 0,
                affiliate_cents: 0,
            },
        };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains(r#""type":"created""#), "{text}");
        assert_eq!(serde_json::from_str::<OrderEvent>(&text).unwrap(), ev);
        let extra = text.replacen(r#""qty":2"#, r#""qty":2,"bogus":1"#, 1);
        assert!(serde_json::from_str::<OrderEvent>(&extra).is_err());
    }
}
