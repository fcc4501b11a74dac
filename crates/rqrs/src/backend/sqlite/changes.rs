//! Wake-ups: how a commit that gives waiting workers something to do (a job on a queue, a
//! control command) reaches them, at once and without polling.
//!
//! In the process that commits, a counter that its waits watch. Across processes, a file beside
//! the database, `<file>-wake`: such a commit touches it (one system call), and every process
//! that waits watches it (inotify on Linux, the platform's file events elsewhere), so a wait
//! costs nothing while nothing comes, and commits that only record outcomes (a busy worker's)
//! wake nobody. Where the file cannot be watched (an in-memory database, a file system without
//! events), waits poll instead; with a watch, they still look every [`SAFETY_NET`], in case
//! events were lost (the kernel drops them when its queue overflows).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use rusqlite::Connection;
use tokio::sync::watch;

/// How often a wait with a watch wakes with no event.
const SAFETY_NET: Duration = Duration::from_secs(1);

/// The wake-ups of one connection to a database.
#[derive(Debug)]
pub(super) struct Changes {
    /// Bumped after each commit of this connection that woke waiters.
    local: watch::Sender<u64>,
    /// The wake file and its handle, for a database file.
    wake: Option<(PathBuf, File)>,
    /// The watch of the wake file, made when a wait first asks for it.
    feed: OnceLock<Option<Feed>>,
}

/// A watch of the wake file, and the count of its events.
struct Feed {
    events: watch::Receiver<u64>,
    _watcher: RecommendedWatcher,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl Changes {
    /// The wake-ups of the database at `file` (`None`: in memory, no other process sees it).
    /// A wake file that cannot be made leaves other processes to their safety net, with a
    /// warning.
    pub(super) fn new(file: Option<&Path>) -> Changes {
        let wake = file.and_then(|file| {
            let mut path = file.as_os_str().to_owned();
            path.push("-wake");
            let path = PathBuf::from(path);
            match File::options().create(true).append(true).open(&path) {
                Ok(handle) => Some((path, handle)),
                Err(error) => {
                    tracing::warn!(
                        %error,
                        file = %path.display(),
                        "cannot make the database's wake file: workers of other processes \
                         will see new jobs within a second instead of at once"
                    );
                    None
                }
            }
        });
        Changes {
            local: watch::channel(0).0,
            wake,
            feed: OnceLock::new(),
        }
    }

    /// Tells waiters, of this process and of others, that a commit gave them something to do.
    pub(super) fn wake(&self) {
        self.local
            .send_modify(|count| *count = count.wrapping_add(1));
        if let Some((path, handle)) = &self.wake
            && let Err(error) = handle.set_modified(SystemTime::now())
        {
            tracing::debug!(%error, file = %path.display(), "cannot touch the wake file");
        }
    }

    /// Changes after each commit of this connection that woke waiters.
    pub(super) fn local(&self) -> watch::Receiver<u64> {
        self.local.subscribe()
    }

    /// A waiter for other processes' wake-ups, polling every `poll` where the wake file cannot
    /// be watched.
    pub(super) fn waiter(&self, poll: Duration) -> Waiter {
        let feed = self.feed.get_or_init(|| {
            let (path, _) = self.wake.as_ref()?;
            match watch_file(path) {
                Ok(feed) => Some(feed),
                Err(error) => {
                    tracing::warn!(
                        %error,
                        file = %path.display(),
                        "cannot watch the database's wake file: waiting workers poll instead"
                    );
                    None
                }
            }
        });
        Waiter {
            events: feed.as_ref().map(|feed| feed.events.clone()),
            poll,
        }
    }
}

fn watch_file(path: &Path) -> notify::Result<Feed> {
    let (count, events) = watch::channel(0u64);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            count.send_modify(|count| *count = count.wrapping_add(1));
        }
    })?;
    watcher.watch(path, RecursiveMode::NonRecursive)?;
    Ok(Feed {
        events,
        _watcher: watcher,
    })
}

/// Waits for the next wake-up from another process.
#[derive(Debug)]
pub(super) struct Waiter {
    events: Option<watch::Receiver<u64>>,
    poll: Duration,
}

impl Waiter {
    /// Counts the wake-ups so far as seen: [`Waiter::changed`] returns for later ones only.
    /// Call it before looking at the database, so that nothing committed after the look is
    /// missed.
    pub(super) fn seen(&mut self) {
        if let Some(events) = &mut self.events {
            events.borrow_and_update();
        }
    }

    /// Returns at the next wake-up since [`Waiter::seen`], at the latest after the poll (or
    /// the safety net).
    pub(super) async fn changed(&mut self) {
        let Some(events) = &mut self.events else {
            tokio::time::sleep(self.poll).await;
            return;
        };
        tokio::select! {
            changed = events.changed() => {
                if changed.is_err() {
                    // The watch has stopped: poll from now on.
                    self.events = None;
                }
            }
            () = tokio::time::sleep(SAFETY_NET) => {}
        }
    }
}

/// SQLite's count of other connections' commits, seen from `conn`: when it has not moved,
/// nothing changed.
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |row| row.get(0))
}
