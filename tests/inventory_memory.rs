//! The inventory conformance suite against the embedded memory backend.

mod common;

use std::sync::Arc;

use livehub::inventory::{Inventory, MemoryInventory};

async fn memory(hold_ms: u64) -> (Arc<dyn Inventory>, ()) {
    (Arc::new(MemoryInventory::new(hold_ms)), ())
}

conformance_suite!(memory);
