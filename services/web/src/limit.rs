//! Rate limits on logins, signups and password resets: at most `limit` attempts per key
//! (a client address, an account) in a sliding window. In memory: each web process limits
//! what reaches it, which is what protects its argon2 and POP3 checks.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct Limiter {
    limit: usize,
    window: Duration,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Limiter { limit: limit as usize, window, attempts: Mutex::new(HashMap::new()) }
    }

    /// Records an attempt under every key; false (and nothing recorded) when any key has
    /// used up its window.
    pub fn attempt(&self, keys: &[&str], now: Instant) -> bool {
        self.allows(keys, now) && {
            self.record(keys, now);
            true
        }
    }

    /// Whether every key has attempts left in its window (records nothing: a login counts
    /// only when it fails).
    pub fn allows(&self, keys: &[&str], now: Instant) -> bool {
        let mut attempts = self.attempts.lock().expect("limiter lock");
        keys.iter().all(|key| match attempts.get_mut(*key) {
            Some(times) => {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                times.len() < self.limit
            }
            None => true,
        })
    }

    /// Records an attempt under every key.
    pub fn record(&self, keys: &[&str], now: Instant) {
        let mut attempts = self.attempts.lock().expect("limiter lock");
        if attempts.len() > 100_000 {
            // Forget keys whose attempts all left the window, so the map cannot grow forever.
            attempts.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        for key in keys {
            attempts.entry((*key).to_string()).or_default().push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_attempts_per_key() {
        let l = Limiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.attempt(&["ip:1", "acct:a"], t0));
        }
        assert!(!l.attempt(&["ip:1", "acct:b"], t0), "the address is used up");
        assert!(l.attempt(&["ip:2", "acct:b"], t0), "another address and account");
        assert!(!l.attempt(&["ip:3", "acct:a"], t0), "the account is used up from anywhere");
        assert!(l.attempt(&["ip:1"], t0 + Duration::from_secs(61)), "the window moved on");
        // Checking records nothing.
        for _ in 0..10 {
            assert!(l.allows(&["ip:9"], t0));
        }
        l.record(&["ip:9"], t0);
        assert!(l.allows(&["ip:9"], t0));
    }
}
