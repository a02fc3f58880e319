//! The bus conformance suite: the rules of a room's event log (consecutive `seq`s delivered in
//! order, preconditions decided with the `seq`, mutes and the comment rate, deal statuses
//! published once, counters, the state a room is opened with), written against the `Bus` trait
//! so each bus runs the same checks. `bus_conformance_suite!(make)` instantiates it, where
//! `make()` builds a fresh bus and a guard the test holds.

use std::sync::{Arc, Weak};
use std::time::Duration;

use livehub::bus::{Bus, BusError, BusSettings, Counters, Event, Published, RoomSink};
use livehub::inventory::StockLevel;
use livehub::persist::SavedRoom;
use livehub::protocol::{Deal, DealStatus, Id, Product};
use parking_lot::Mutex;

use super::conformance::{fresh_room, id};

/// The settings every bus of the suite gets: a comment burst of 3, and rooms that close
/// [`OPEN_TTL_MS`] after their host was last seen.
pub fn settings() -> BusSettings {
    BusSettings {
        history: 100,
        recent_comments: 10,
        comment_rate: (1.0, 3.0),
        viewers_ttl_ms: 3000,
        open_ttl_ms: OPEN_TTL_MS,
    }
}

/// The suite's `room.open_ttl_ms`: short, so a room closing is seen, and long enough for every
/// other test of the suite (each publishes host events, which keep its room open).
pub const OPEN_TTL_MS: u64 = 2_000;

/// A room sink that records what the bus fed it.
#[derive(Default)]
pub struct Recorder {
    pub loaded: Mutex<Option<SavedRoom>>,
    pub events: Mutex<Vec<(u64, Event)>>,
    pub stock: Mutex<Vec<(Id, StockLevel)>>,
    pub lost: Mutex<bool>,
    pub ticks: Mutex<Vec<livehub::bus::AuctionTick>>,
    pub loaded_before_first_event: Mutex<Option<bool>>,
}

impl RoomSink for Recorder {
    fn load(&self, state: SavedRoom) {
        *self.loaded.lock() = Some(state);
    }
    fn counters(&self, _counters: Counters) {}
    fn deliver(&self, seq: u64, event: Event) {
        let mut first = self.loaded_before_first_event.lock();
        if first.is_none() {
            *first = Some(self.loaded.lock().is_some());
        }
        self.events.lock().push((seq, event));
    }
    fn stock(&self, deal: &Id, level: StockLevel) {
        self.stock.lock().push((deal.clone(), level));
    }
    fn auction_bid(&self, tick: livehub::bus::AuctionTick) {
        self.ticks.lock().push(tick);
    }
    fn lost(&self) {
        *self.lost.lock() = true;
    }
}

impl Recorder {
    /// Waits (bounded) until `n` events were delivered; returns their seqs.
    pub async fn seqs_when(&self, n: usize) -> Vec<u64> {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let seqs: Vec<u64> = self.events.lock().iter().map(|(s, _)| *s).collect();
            if seqs.len() >= n || tokio::time::Instant::now() > deadline {
                return seqs;
            }
            tokio::time::sleep(Duration::from_millis(5)).await; // polling the recorder
        }
    }
}

/// Opens `room` on `bus` with a fresh recorder (kept alive by the returned Arc).
pub async fn open(bus: &dyn Bus, room: &Id) -> Arc<Recorder> {
    let rec = Arc::new(Recorder::default());
    let sink: Weak<dyn RoomSink> = Arc::downgrade(&rec) as Weak<Recorder>;
    bus.open(room, sink, true).await.expect("open");
    rec
}

fn announce(n: usize) -> Event {
    Event::Announcement {
        text: format!("a{n}"),
    }
}

fn comment(user: &str, text: &str) -> Event {
    Event::Comment {
        user: id(user),
        name: user.into(),
        text: text.into(),
        ts: livehub::hub::now_ms(),
    }
}

fn deal(status: DealStatus) -> Deal {
    Deal {
        id: id("d"),
        product_id: id("p"),
        title: "P".into(),
        image_url: None,
        price_cents: 100,
        currency: "USD".into(),
        stock: 5,
        remaining: 5,
        per_user_limit: 1,
        commission_bps: 0,
        affiliate_bps: 0,
        ends_at: livehub::hub::now_ms() + 60_000,
        status,
        started_at: None,
    }
}

fn seq_of(p: Published) -> u64 {
    match p {
        Published::Seq(s) => s,
        Published::Unchanged => panic!("nothing published"),
    }
}

pub async fn concurrent_publishes_get_consecutive_seqs_delivered_in_order(bus: Arc<dyn Bus>) {
    let room = fresh_room("order");
    let rec = open(bus.as_ref(), &room).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (bus, room) = (Arc::clone(&bus), room.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25 {
                mine.push(seq_of(
                    bus.publish(&room, announce(t * 100 + i)).await.unwrap(),
                ));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u64>>(), "every seq once");
    assert_eq!(rec.seqs_when(200).await, (1..=200).collect::<Vec<u64>>());
    assert_eq!(*rec.loaded_before_first_event.lock(), Some(true));
}

pub async fn preconditions_are_decided_with_the_seq(bus: Arc<dyn Bus>) {
    let room = fresh_room("rules");
    let rec = open(bus.as_ref(), &room).await;
    assert_eq!(
        bus.publish(&room, Event::Unpinned).await,
        Err(BusError::NothingPinned)
    );
    let product = Product {
        id: id("p"),
        title: "P".into(),
        price_cents: 1,
        currency: "USD".into(),
        image_url: None,
    };
    bus.publish(&room, Event::Pinned { product }).await.unwrap();
    assert_eq!(
        bus.publish(&room, Event::Unpinned).await,
        Ok(Published::Seq(2))
    );
    assert_eq!(
        bus.publish(&room, Event::Unpinned).await,
        Err(BusError::NothingPinned)
    );
    let c = seq_of(bus.publish(&room, comment("u", "hi")).await.unwrap());
    let cid = livehub::bus::comment_id(c);
    let gone = Event::CommentDeleted { id: cid.clone() };
    assert_eq!(
        bus.publish(&room, gone.clone()).await,
        Ok(Published::Seq(4))
    );
    assert_eq!(
        bus.publish(&room, gone).await,
        Err(BusError::NoSuchComment(cid))
    );
    let unknown = Event::CommentDeleted { id: id("c999") };
    assert!(matches!(
        bus.publish(&room, unknown).await,
        Err(BusError::NoSuchComment(_))
    ));
    assert_eq!(
        rec.seqs_when(4).await,
        vec![1, 2, 3, 4],
        "refusals take no seq"
    );
}

pub async fn mutes_and_the_comment_rate_hold(bus: Arc<dyn Bus>) {
    let room = fresh_room("mute");
    let _rec = open(bus.as_ref(), &room).await;
    for i in 0..3 {
        bus.publish(&room, comment("chatty", &format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        bus.publish(&room, comment("chatty", "one more")).await,
        Err(BusError::RateLimited)
    );
    bus.publish(&room, comment("other", "fine")).await.unwrap();
    let until = livehub::hub::now_ms() + 10_000;
    bus.mute(&room, &id("troll"), until).await.unwrap();
    assert!(matches!(
        bus.publish(&room, comment("troll", "hey")).await,
        Err(BusError::Muted(s)) if (9..=11).contains(&s)
    ));
    bus.mute(&room, &id("troll"), 0).await.unwrap();
    bus.publish(&room, comment("troll", "sorry")).await.unwrap();
}

pub async fn deal_statuses_are_published_once_and_never_go_back(bus: Arc<dyn Bus>) {
    let room = fresh_room("deals");
    let rec = open(bus.as_ref(), &room).await;
    let ev = |status, version| Event::Deal {
        deal: deal(status),
        version,
    };
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Live, 0)).await,
        Ok(Published::Seq(1))
    );
    assert_eq!(
        bus.publish(&room, ev(DealStatus::SoldOut, 5)).await,
        Ok(Published::Seq(2))
    );
    // Every node that saw the sell-out tries to publish it: once is enough.
    assert_eq!(
        bus.publish(&room, ev(DealStatus::SoldOut, 5)).await,
        Ok(Published::Unchanged)
    );
    // A "live again" judged before the sell-out is stale.
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Live, 4)).await,
        Ok(Published::Unchanged)
    );
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Live, 6)).await,
        Ok(Published::Seq(3))
    );
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Ended, 0)).await,
        Ok(Published::Seq(4))
    );
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Ended, 0)).await,
        Ok(Published::Unchanged)
    );
    assert_eq!(
        bus.publish(&room, ev(DealStatus::Live, 9)).await,
        Ok(Published::Unchanged)
    );
    assert_eq!(rec.seqs_when(4).await, vec![1, 2, 3, 4]);
}

pub async fn counters_add_up_likes_and_report_viewers(bus: Arc<dyn Bus>) {
    let room = fresh_room("counters");
    let _rec = open(bus.as_ref(), &room).await;
    assert_eq!(
        bus.counters(&room, 3, 5, true).await.unwrap(),
        Counters {
            viewers: 3,
            likes: 5
        }
    );
    assert_eq!(
        bus.counters(&room, 2, 4, false).await.unwrap(),
        Counters {
            viewers: 2,
            likes: 9
        }
    );
}

pub async fn stock_readings_reach_the_room(bus: Arc<dyn Bus>) {
    let room = fresh_room("stock");
    let rec = open(bus.as_ref(), &room).await;
    let level = StockLevel {
        remaining: 4,
        version: 7,
    };
    bus.stock(&room, &id("d"), level);
    assert!(rec.stock.lock().contains(&(id("d"), level)));
}

pub async fn a_closed_room_continues_its_sequence_when_opened_again(bus: Arc<dyn Bus>) {
    let room = fresh_room("reopen");
    assert_eq!(
        bus.peek(&room).await.unwrap(),
        None,
        "a room that never existed"
    );
    let rec = open(bus.as_ref(), &room).await;
    for i in 0..3 {
        bus.publish(&room, announce(i)).await.unwrap();
    }
    rec.seqs_when(3).await;
    let last = SavedRoom::empty(room.clone(), 3);
    let sink: Weak<dyn RoomSink> = Arc::downgrade(&rec) as Weak<Recorder>;
    bus.close(&room, &sink, last).await;
    assert_eq!(bus.peek(&room).await.unwrap().map(|(s, _)| s.seq), Some(3));
    let again = open(bus.as_ref(), &room).await;
    assert_eq!(again.loaded.lock().as_ref().map(|s| s.seq), Some(3));
    assert_eq!(bus.publish(&room, announce(9)).await, Ok(Published::Seq(4)));
}

pub async fn closing_a_replaced_room_leaves_the_newer_open_alone(bus: Arc<dyn Bus>) {
    let room = fresh_room("replaced");
    let old = open(bus.as_ref(), &room).await;
    // The room closed as idle on this node while a viewer's join opened it anew.
    let new = open(bus.as_ref(), &room).await;
    let old_sink: Weak<dyn RoomSink> = Arc::downgrade(&old) as Weak<Recorder>;
    bus.close(&room, &old_sink, SavedRoom::empty(room.clone(), 0))
        .await;
    bus.publish(&room, announce(1)).await.unwrap();
    assert_eq!(new.seqs_when(1).await, vec![1]);
    assert!(old.events.lock().is_empty());
}

pub async fn a_viewer_cannot_create_a_room_nobody_opened(bus: Arc<dyn Bus>) {
    let room = fresh_room("unopened");
    let rec = Arc::new(Recorder::default());
    let sink: Weak<dyn RoomSink> = Arc::downgrade(&rec) as Weak<Recorder>;
    assert_eq!(
        bus.open(&room, sink.clone(), false).await,
        Err(BusError::NotOpened)
    );
    assert_eq!(
        bus.peek(&room).await.unwrap(),
        None,
        "nothing was allocated"
    );
    assert!(rec.loaded.lock().is_none());
    // The host opens it; then anyone may open it.
    let host = open(bus.as_ref(), &room).await;
    bus.publish(&room, announce(1)).await.unwrap();
    host.seqs_when(1).await;
    bus.close(
        &room,
        &(Arc::downgrade(&host) as Weak<dyn RoomSink>),
        SavedRoom::empty(room.clone(), 1),
    )
    .await;
    bus.open(&room, sink, false).await.unwrap();
    assert_eq!(rec.loaded.lock().as_ref().map(|s| s.seq), Some(1));
}

/// Issue 19: a room lives `open_ttl_ms` after its host was last seen. Reports that see the host
/// keep it open past that time; once nothing sees the host for that long the room is closed:
/// its sink is told, a viewer cannot open it, and its host opens a new one.
pub async fn a_room_whose_host_is_not_seen_closes_after_its_open_ttl(bus: Arc<dyn Bus>) {
    let room = fresh_room("unattended");
    let host = open(bus.as_ref(), &room).await;
    bus.publish(&room, announce(1)).await.unwrap();
    let kept_until = tokio::time::Instant::now() + Duration::from_millis(OPEN_TTL_MS * 2);
    while tokio::time::Instant::now() < kept_until {
        bus.counters(&room, 1, 0, true)
            .await
            .expect("the host is seen: the room stays open");
        tokio::time::sleep(Duration::from_millis(200)).await; // a node's report, every so often
    }
    let deadline = tokio::time::Instant::now() + super::WAIT;
    loop {
        match bus.counters(&room, 1, 0, false).await {
            Err(BusError::NotOpened) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room never closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // waiting for its time to run out
    }
    assert!(*host.lost.lock(), "the room's sink was told");
    let viewer = Arc::new(Recorder::default());
    let sink: Weak<dyn RoomSink> = Arc::downgrade(&viewer) as Weak<Recorder>;
    assert_eq!(bus.open(&room, sink, false).await, Err(BusError::NotOpened));
    bus.close(
        &room,
        &(Arc::downgrade(&host) as Weak<dyn RoomSink>),
        SavedRoom::empty(room.clone(), 1),
    )
    .await;
    let again = open(bus.as_ref(), &room).await;
    assert_eq!(
        again.loaded.lock().as_ref().map(|s| s.seq),
        Some(0),
        "a new room"
    );
}

#[macro_export]
macro_rules! bus_conformance_suite {
    ($make:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_publishes_get_consecutive_seqs_delivered_in_order() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::concurrent_publishes_get_consecutive_seqs_delivered_in_order(
                bus,
            )
            .await;
        }
        #[tokio::test]
        async fn preconditions_are_decided_with_the_seq() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::preconditions_are_decided_with_the_seq(bus).await;
        }
        #[tokio::test]
        async fn mutes_and_the_comment_rate_hold() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::mutes_and_the_comment_rate_hold(bus).await;
        }
        #[tokio::test]
        async fn deal_statuses_are_published_once_and_never_go_back() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::deal_statuses_are_published_once_and_never_go_back(bus).await;
        }
        #[tokio::test]
        async fn counters_add_up_likes_and_report_viewers() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::counters_add_up_likes_and_report_viewers(bus).await;
        }
        #[tokio::test]
        async fn stock_readings_reach_the_room() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::stock_readings_reach_the_room(bus).await;
        }
        #[tokio::test]
        async fn a_viewer_cannot_create_a_room_nobody_opened() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::a_viewer_cannot_create_a_room_nobody_opened(bus).await;
        }
        #[tokio::test]
        async fn closing_a_replaced_room_leaves_the_newer_open_alone() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::closing_a_replaced_room_leaves_the_newer_open_alone(bus).await;
        }
        #[tokio::test]
        async fn a_room_whose_host_is_not_seen_closes_after_its_open_ttl() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::a_room_whose_host_is_not_seen_closes_after_its_open_ttl(bus)
                .await;
        }
        #[tokio::test]
        async fn a_closed_room_continues_its_sequence_when_opened_again() {
            let (bus, _guard) = $make().await;
            common::bus_conformance::a_closed_room_continues_its_sequence_when_opened_again(bus)
                .await;
        }
    };
}
