//! A room's two tasks on this node: the counters' ticker (stock, likes and viewers to the
//! viewers' counter slots, never waiting on Redis) and the upkeep (reports to the bus, funnel
//! flushes, deal ends, idle close), which does.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Deadline, Hub};
use crate::bus::{Event, Published, RoomSink};
use crate::clock::now_ms;
use crate::error::HubError;
use crate::protocol::Id;
use crate::room::Room;

impl Hub {
    /// The room's counters' ticker: every `room.tick_ms` the changed stock, likes and viewers
    /// go to its viewers' counter slots. Local only, so the counters never wait on Redis; the
    /// room's upkeep, which does, is [`Hub::keep_room`], a task beside it (issue 20). Stops when
    /// the room closes or the hub shuts down.
    pub(super) async fn tick_room(self: Arc<Self>, room: Arc<Room>) {
        let tick = Duration::from_millis(self.config.room.tick_ms);
        let viewers_every = Duration::from_millis(self.config.room.viewers_interval_ms);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_viewers = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if room.is_closed() {
                break;
            }
            let now = tokio::time::Instant::now();
            let send_viewers = now.duration_since(last_viewers) >= viewers_every;
            if send_viewers {
                last_viewers = now;
            }
            room.tick(send_viewers);
        }
    }

    /// The room's upkeep on this node, every `room.tick_ms` (a slow Redis delays the next round,
    /// never the counters): its report to the bus, its funnel facts, the deals whose time ran
    /// out, and closing it when idle (or when the bus closed it).
    pub(super) async fn keep_room(self: Arc<Self>, room: Arc<Room>) {
        let tick = Duration::from_millis(self.config.room.tick_ms);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let flush_every = Duration::from_millis(self.config.funnel.flush_ms);
        let mut last_idle_check = tokio::time::Instant::now();
        let mut last_flush = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.flush_funnel(&room).await;
                    return;
                }
                _ = interval.tick() => {}
            }
            if room.is_closed() {
                self.forget(&room).await;
                return;
            }
            self.report_counters(&room).await;
            if last_flush.elapsed() >= flush_every {
                last_flush = tokio::time::Instant::now();
                self.flush_funnel(&room).await;
            }
            for deal in room.expired_deals(now_ms()) {
                self.end_expired_deal(&room, &deal).await;
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(last_idle_check) >= Duration::from_secs(1) {
                last_idle_check = now;
                if room.close_if_idle(now_ms()).is_some() {
                    self.forget(&room).await;
                    return;
                }
            }
        }
    }

    /// Sends the room's funnel facts from this node to the store.
    pub async fn flush_funnel(&self, room: &Room) {
        let within = Duration::from_millis(self.config.inventory.host_op_timeout_ms);
        self.funnel
            .flush(
                room.id(),
                room.tally(),
                room.local_viewers(),
                now_ms(),
                within,
            )
            .await;
    }

    /// Sends this node's funnel facts of `room` now, if the room is open here (before a
    /// reading, so the reader's own node is never a flush behind).
    pub async fn flush_funnel_of(&self, room: &Id) {
        if let Some(room) = self.existing_room(room) {
            self.flush_funnel(&room).await;
        }
    }

    async fn report_counters(&self, room: &Room) {
        let r = room.take_report(now_ms());
        let report = self
            .bus
            .counters(room.id(), r.viewers, r.likes, r.host_seen);
        match self.within(Deadline::Host, report).await {
            Ok(counters) => room.counters(counters),
            // The room's lifetime ran out: the bus closed it here, the ticker forgets it.
            Err(HubError::NotLive) => {}
            Err(e) => {
                room.unreport_likes(r.likes);
                crate::quiet::warn("room counters not reported", &e);
            }
        }
    }

    /// Drops a closed room from this node and from the bus.
    async fn forget(&self, room: &Arc<Room>) {
        if self.rooms.remove(room) {
            metrics::gauge!(crate::metrics::ROOMS).decrement(1.0);
        }
        self.flush_funnel(room).await;
        let sink: Weak<dyn RoomSink> = Arc::downgrade(room) as Weak<Room>;
        self.bus.close(room.id(), &sink, room.export()).await;
        tracing::debug!(room = %room.id(), "room closed");
    }

    async fn end_expired_deal(&self, room: &Room, deal: &Id) {
        let ended = self.inventory.end_if_due(room.id(), deal, now_ms());
        let ended = match self.within(Deadline::Host, ended).await {
            Ok(Some(ended)) => ended,
            // Its time has not run out by the inventory's clock: the next tick asks again.
            Ok(None) => return,
            Err(e) => {
                crate::quiet::warn("timed-out deal not ended; retrying", &e);
                return;
            }
        };
        if ended.was_live {
            room.tally().moment(crate::funnel::Moment {
                t: now_ms(),
                kind: crate::funnel::MomentKind::DealEnd,
                deal: Some(ended.deal.id.clone()),
                product: Some(ended.deal.product_id.clone()),
                title: Some(ended.deal.title.clone()),
            });
        }
        let event = Event::Deal {
            deal: ended.deal,
            version: 0,
        };
        match self
            .within(Deadline::Host, self.bus.publish(room.id(), event))
            .await
        {
            Ok(Published::Seq(_) | Published::Unchanged) => {}
            Err(e) => crate::quiet::warn("deal end not published", &e),
        }
    }
}
