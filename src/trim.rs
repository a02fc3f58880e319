//! Gives freed heap memory back to the operating system every [`TRIM_INTERVAL`].
//!
//! glibc's allocator keeps pages it no longer uses inside its arenas, so a hub whose live heap
//! is flat still grows in resident memory as connections come and go (a 30-minute soak with
//! reconnects: live heap 15.3 → 15.2 MB under heaptrack, resident memory 30.6 → 34.6 MiB).
//! `malloc_trim(0)` releases every whole free page of every arena. It runs on a blocking
//! thread, takes milliseconds, and changes no allocation; elsewhere than glibc it does nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed memory is returned.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Returns freed heap pages to the OS every [`TRIM_INTERVAL`] until `stop`.
pub async fn run(stop: CancellationToken) {
    let mut every = tokio::time::interval(TRIM_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    }
}

/// Releases whole free pages of every malloc arena; true when some memory was returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas and is safe to call from any thread at
    // any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere the allocator is left alone.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn freed_memory_inside_the_heap_goes_back_to_the_os() {
        // 64 MiB in blocks below the mmap threshold, with a block kept above them so that
        // freeing them leaves free pages inside the heap (which free() alone never returns).
        // On a thread of its own arena, glibc may return a heap's tail at free() already; either
        // way, after the trim the 64 MiB are no longer resident. The process's other tests run
        // beside this one and allocate and free too: the bounds leave them room.
        let base = resident_bytes();
        let blocks: Vec<Vec<u8>> = (0..4_096).map(|i| vec![i as u8; 16 * 1024]).collect();
        let keep = vec![1u8; 1024];
        let full = resident_bytes();
        drop(blocks);
        super::trim();
        let after = resident_bytes();
        assert!(
            full >= base + (32 << 20),
            "the blocks were resident: {base} -> {full}"
        );
        assert!(
            after <= base + (16 << 20),
            "resident {base} -> {full} -> {after} bytes after the trim"
        );
        drop(keep);
    }
}
