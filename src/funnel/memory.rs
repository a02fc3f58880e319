//! The embedded funnel store: one process, every count exact (sets of users, no estimate).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::record::{Op, Stage};
use super::store::{Activity, FunnelError, FunnelStore, UserCounts};
use crate::commerce::Channel;
use crate::protocol::Id;

#[derive(Default)]
struct RoomFunnel {
    channels: HashMap<Id, Channel>,
    room: HashMap<(Stage, Channel), HashSet<Id>>,
    deals: HashMap<(Id, Stage, Channel), HashSet<Id>>,
    sold_out: BTreeMap<(Id, Channel), u64>,
    connected_ms: HashMap<Id, u64>,
    activity: Activity,
}

impl RoomFunnel {
    fn channel(&mut self, user: &Id, channel: Channel) -> Channel {
        *self.channels.entry(user.clone()).or_insert(channel)
    }

    fn reach(&mut self, user: &Id, channel: Channel, stage: Stage, deal: Option<&Id>) {
        let channel = self.channel(user, channel);
        let set = match deal {
            None => self.room.entry((stage, channel)).or_default(),
            Some(d) => self.deals.entry((d.clone(), stage, channel)).or_default(),
        };
        set.insert(user.clone());
    }

    fn apply(&mut self, op: &Op, engaged_ms: u64) {
        match op {
            Op::Reached {
                user,
                channel,
                stage,
                deal,
            } => self.reach(user, *channel, *stage, deal.as_ref()),
            Op::Connected { user, channel, ms } => {
                let total = self.connected_ms.entry(user.clone()).or_default();
                *total += ms;
                if *total >= engaged_ms {
                    self.connected_ms.remove(user);
                    self.reach(user, *channel, Stage::Engaged, None);
                }
            }
            Op::SoldOutTap {
                user,
                channel,
                deal,
            } => {
                let channel = self.channel(user, *channel);
                *self.sold_out.entry((deal.clone(), channel)).or_default() += 1;
            }
            Op::Comments { bucket, n } => {
                self.activity.buckets.entry(*bucket).or_default().comments += n;
            }
            Op::Taps { bucket, n } => self.activity.buckets.entry(*bucket).or_default().taps += n,
            Op::PeakViewers { bucket, n } => {
                let b = self.activity.buckets.entry(*bucket).or_default();
                b.viewers = b.viewers.max(*n);
            }
            Op::Moment(m) => {
                let at = self.activity.moments.partition_point(|x| x.t <= m.t);
                self.activity.moments.insert(at, m.clone());
            }
        }
    }
}

/// Every room's funnel in this process.
pub struct MemoryFunnel {
    engaged_ms: u64,
    rooms: DashMap<Id, Mutex<RoomFunnel>>,
}

impl MemoryFunnel {
    /// An empty store; users are engaged after `engaged_ms` connected in all.
    pub fn new(engaged_ms: u64) -> Self {
        MemoryFunnel {
            engaged_ms,
            rooms: DashMap::new(),
        }
    }
}

#[async_trait]
impl FunnelStore for MemoryFunnel {
    async fn apply(&self, room: &Id, ops: &[Op]) -> Result<(), FunnelError> {
        let entry = self.rooms.entry(room.clone()).or_default();
        let mut f = entry.lock();
        for op in ops {
            f.apply(op, self.engaged_ms);
        }
        Ok(())
    }

    async fn counts(&self, room: &Id) -> Result<UserCounts, FunnelError> {
        let Some(entry) = self.rooms.get(room) else {
            return Ok(UserCounts::default());
        };
        let f = entry.lock();
        Ok(UserCounts {
            room: f
                .room
                .iter()
                .map(|(k, users)| (*k, users.len() as u64))
                .collect(),
            deals: f
                .deals
                .iter()
                .map(|(k, users)| (k.clone(), users.len() as u64))
                .collect(),
            sold_out: f.sold_out.clone(),
        })
    }

    async fn activity(&self, room: &Id) -> Result<Activity, FunnelError> {
        Ok(self
            .rooms
            .get(room)
            .map(|f| f.lock().activity.clone())
            .unwrap_or_default())
    }
}
