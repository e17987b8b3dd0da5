//! Log lines that traffic on the data segment can trigger: one line when an episode
//! starts, then only a counter (kept by the caller) until the episode ends, by `end`
//! or after `quiet` with nothing of it. A forged frame a microsecond cannot write a
//! line a microsecond.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Episodes<K> {
    /// Each open episode and when it was last seen.
    open: HashMap<K, Instant>,
    quiet: Duration,
}

impl<K: Hash + Eq> Episodes<K> {
    pub fn new(quiet: Duration) -> Self {
        Episodes {
            open: HashMap::new(),
            quiet,
        }
    }

    /// Something of episode `key` happened at `now`: true if that starts the episode
    /// (log it), false while it goes on.
    pub fn starts(&mut self, key: K, now: Instant) -> bool {
        let quiet = self.quiet;
        let last = self.open.insert(key, now);
        last.is_none_or(|at| now.saturating_duration_since(at) > quiet)
    }

    /// Ends every episode `ends` says yes to.
    pub fn end_where(&mut self, mut ends: impl FnMut(&K) -> bool) {
        self.open.retain(|key, _| !ends(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_an_episode() {
        let t0 = Instant::now();
        let mut e = Episodes::new(Duration::from_secs(60));
        assert!(e.starts("a", t0));
        assert!(!e.starts("a", t0 + Duration::from_secs(1)), "goes on");
        assert!(e.starts("b", t0), "another episode");
        assert!(
            !e.starts("a", t0 + Duration::from_secs(60)),
            "seen within quiet"
        );
        assert!(
            e.starts("a", t0 + Duration::from_secs(121)),
            "quiet for over 60 s"
        );
        e.end_where(|k| *k == "b");
        assert!(
            e.starts("b", t0 + Duration::from_secs(2)),
            "ended, so a new one"
        );
    }
}
