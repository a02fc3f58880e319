//! The commands runtime: where connections' readers and the rooms' counter tickers run, apart
//! from the runtime whose tasks write to the sockets (issue 20).

/// A runtime of its own for connections' readers, shut down with the hub.
pub(super) struct CommandRuntime(Option<tokio::runtime::Runtime>);

impl CommandRuntime {
    pub(super) fn new() -> Self {
        // As many workers as the hub's own runtime (the cores this process may use): one
        // thread would cap a closed loop of buyers at one core's worth of commands.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("livehub-commands")
            .enable_all()
            .build();
        match built {
            Ok(rt) => CommandRuntime(Some(rt)),
            Err(e) => {
                tracing::warn!(error = %e, "no commands runtime; readers share the hub's");
                CommandRuntime(None)
            }
        }
    }
}

impl CommandRuntime {
    /// Its handle, or None when it could not be made.
    pub(super) fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle())
    }
}

impl Drop for CommandRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Allowed from async contexts, unlike dropping the runtime.
            rt.shutdown_background();
        }
    }
}
