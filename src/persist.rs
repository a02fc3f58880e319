//! The state file: what a hub writes when it stops gracefully and reads when it starts, so a
//! restart (a deploy, a config change) keeps every room's `seq`, history ring, pinned product,
//! recent comments, likes, mutes, live video stream and latest announcement. Viewers closed with 1001 reconnect with `?since=` and resume
//! exactly where they were: no event is missed or repeated.
//!
//! The file is written atomically (a temporary file, fsync, rename), so a crash while saving
//! leaves the previous file intact. A hub that crashes does not save; its rooms then start
//! from the last saved state, and viewers whose `since` is past that state's `seq` get
//! `resumed: false` and a fresh snapshot.
//!
//! Deals are not in the file: the inventory is their source of truth (Redis keeps them across
//! restarts and the rooms re-read them; the in-memory inventory loses them with the process).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::{Announced, Comment, Deal, Id, Product};

/// The file format version this build reads and writes.
pub const VERSION: u32 = 1;

/// One room as saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedRoom {
    pub room: Id,
    /// The last `seq` published; the next event gets `seq + 1`.
    pub seq: u64,
    /// The history ring, oldest first: `(seq, the exact frame sent to viewers)`.
    pub history: Vec<(u64, String)>,
    pub pinned: Option<Product>,
    pub recent: Vec<Comment>,
    pub likes: u64,
    /// Users still muted, with the milliseconds left.
    pub muted: Vec<(Id, u64)>,
    /// The room's deals as last published (the Redis bus's rooms; the state file has none,
    /// since the memory inventory does not outlive the process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deals: Vec<Deal>,
    /// The room's auctions as last published (live ones, and closed ones the bus still
    /// keeps), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auctions: Vec<crate::protocol::AuctionView>,
    /// The room's live video stream as its host set it (a file saved before streams existed
    /// has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    /// The room's latest announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<Announced>,
}

impl SavedRoom {
    /// A room with nothing in it whose next event gets `seq + 1`.
    pub fn empty(room: Id, seq: u64) -> Self {
        SavedRoom {
            room,
            seq,
            history: Vec::new(),
            pinned: None,
            recent: Vec::new(),
            likes: 0,
            muted: Vec::new(),
            deals: Vec::new(),
            auctions: Vec::new(),
            stream_url: None,
            announcement: None,
        }
    }
}

/// Everything a hub saves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub saved_at_ms: u64,
    pub rooms: Vec<SavedRoom>,
    /// Rooms dropped as idle: only their last `seq` is kept.
    pub retired: Vec<(Id, u64)>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} has version {found}; this build reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `state` to `path` atomically: readers see the old file or the new one, never a part.
pub fn save(path: &Path, state: &SavedState) -> Result<(), PersistError> {
    let json = serde_json::to_vec(state).map_err(|source| PersistError::Format {
        path: path.to_owned(),
        source,
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&json).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads the state at `path`; `None` when there is no file (a first start).
pub fn load(path: &Path) -> Result<Option<SavedState>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    // Check the version before the shape, so an old or newer file says which it is.
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let format = |source| PersistError::Format {
        path: path.to_owned(),
        source,
    };
    let head: Head = serde_json::from_slice(&bytes).map_err(format)?;
    if head.version != VERSION {
        return Err(PersistError::Version {
            path: path.to_owned(),
            found: head.version,
        });
    }
    serde_json::from_slice(&bytes).map(Some).map_err(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SavedState {
        SavedState {
            version: VERSION,
            saved_at_ms: 1,
            rooms: vec![SavedRoom {
                room: Id::new("show").unwrap(),
                seq: 7,
                history: vec![(7, r#"{"type":"announcement","seq":7,"text":"hi"}"#.into())],
                pinned: None,
                recent: Vec::new(),
                likes: 3,
                muted: vec![(Id::new("troll").unwrap(), 5_000)],
                deals: Vec::new(),
                auctions: Vec::new(),
                stream_url: Some("https://cdn.example/live.m3u8".into()),
                announcement: Some(Announced {
                    seq: 7,
                    text: "hi".into(),
                }),
            }],
            retired: vec![(Id::new("old").unwrap(), 42)],
        }
    }

    #[test]
    fn saved_state_reads_back_equal_and_leaves_no_temporary_file() {
        let dir = tempdir();
        let path = dir.join("state.json");
        save(&path, &state()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state()));
        assert!(!dir.join("state.json.tmp").exists());
    }

    #[test]
    fn a_room_saved_before_streams_and_announcements_loads_without_them() {
        let old = r#"{"version":1,"saved_at_ms":1,"retired":[],"rooms":[{"room":"show","seq":7,
            "history":[],"pinned":null,"recent":[],"likes":0,"muted":[]}]}"#;
        let dir = tempdir();
        let path = dir.join("old.json");
        std::fs::write(&path, old).unwrap();
        let room = &load(&path).unwrap().unwrap().rooms[0];
        assert_eq!((&room.stream_url, &room.announcement), (&None, &None));
    }

    #[test]
    fn a_missing_file_is_a_first_start() {
        assert_eq!(load(&tempdir().join("none.json")).unwrap(), None);
    }

    #[test]
    fn corrupt_and_foreign_version_files_are_refused_with_the_path() {
        let dir = tempdir();
        let path = dir.join("bad.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not valid"), "{e}");
        std::fs::write(&path, br#"{"version":99}"#).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("version 99"), "{e}");
    }

    /// A fresh directory per call (tests run in parallel).
    fn tempdir() -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("livehub-persist-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
