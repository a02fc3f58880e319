//! The bus conformance suite against the in-process bus.

use crate::bus_conformance_suite;
use crate::common;

use std::sync::Arc;

use livehub::bus::{Bus, LocalBus};

async fn local() -> (Arc<dyn Bus>, ()) {
    (
        Arc::new(LocalBus::new(common::bus_conformance::settings())),
        (),
    )
}

bus_conformance_suite!(local);
