//! The rooms open on this node: a sharded map (no global lock, as mini-redis's `Db`) from id
//! to a cell that is filled once, by the first user, while the room is opened on the bus.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::OnceCell;

use crate::error::HubError;
use crate::protocol::Id;
use crate::room::Room;

/// A room's place in the registry: empty while it is being opened.
pub(super) type RoomCell = Arc<OnceCell<Arc<Room>>>;

/// The registry of rooms open (or being opened) here, at most `max` of them.
pub struct Rooms {
    map: DashMap<Id, RoomCell>,
    max: usize,
}

impl Rooms {
    /// An empty registry holding at most `max` rooms (`room.max_rooms`).
    pub fn new(max: usize) -> Self {
        Rooms {
            map: DashMap::new(),
            max,
        }
    }

    /// The room if it is open here now.
    pub fn get(&self, id: &Id) -> Option<Arc<Room>> {
        self.map.get(id).and_then(|c| c.value().get().cloned())
    }

    /// The cell of `id`, made empty when there is none; `unavailable` when the registry holds
    /// its most rooms.
    pub(super) fn cell(&self, id: &Id) -> Result<RoomCell, HubError> {
        if let Some(c) = self.map.get(id) {
            return Ok(Arc::clone(c.value()));
        }
        if self.map.len() >= self.max {
            return Err(HubError::Unavailable(
                "this hub hosts its maximum number of rooms".into(),
            ));
        }
        Ok(Arc::clone(self.map.entry(id.clone()).or_default().value()))
    }

    /// Drops `cell` from `id` if it is still the one there: `unopened` only while it is still
    /// empty (an open that failed leaves nothing to count against the most rooms).
    pub(super) fn drop_cell(&self, id: &Id, cell: &RoomCell, unopened: bool) {
        self.map.remove_if(id, |_, c| {
            Arc::ptr_eq(c, cell) && (!unopened || c.get().is_none())
        });
    }

    /// Drops `room` if it is the one registered under its id; true when it was.
    pub fn remove(&self, room: &Arc<Room>) -> bool {
        self.map
            .remove_if(room.id(), |_, c| {
                c.get().is_some_and(|r| Arc::ptr_eq(r, room))
            })
            .is_some()
    }

    /// Every room open here now.
    pub fn open(&self) -> Vec<Arc<Room>> {
        self.map
            .iter()
            .filter_map(|r| r.value().get().cloned())
            .collect()
    }
}
