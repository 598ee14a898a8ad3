//! App leases: an application creates a lease with a TTL and renews it; what
//! it acquires under the lease (locks, permits, memberships, candidacies) is
//! released when the lease lapses, although the sidecar — and its ensemble
//! session — live on. This table only keeps deadlines; the app
//! (`app::App::reap_leases`) releases the holdings of lapsed leases.
//!
//! Time is tokio's clock, so unit tests run with paused time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{ApiError, Code};

/// Shortest and longest accepted TTL.
pub const MIN_TTL: Duration = Duration::from_millis(500);
pub const MAX_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub id: String,
    pub ttl: Duration,
    /// Time left until the lease lapses unless renewed.
    pub remaining: Duration,
}

#[derive(Default)]
pub struct Leases {
    // std Mutex: never held across an await.
    table: Mutex<HashMap<String, Entry>>,
    changed: Notify,
}

struct Entry {
    ttl: Duration,
    deadline: Instant,
}

fn info(id: &str, e: &Entry, now: Instant) -> LeaseInfo {
    LeaseInfo {
        id: id.to_string(),
        ttl: e.ttl,
        remaining: e.deadline.saturating_duration_since(now),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Code::LeaseNotFound,
        format!(
            "app lease {id:?} does not exist: it was never created, was revoked, or lapsed because it \
             was not renewed within its TTL (everything held under it was released); create a new \
             lease with POST /v1/leases and acquire again"
        ),
    )
}

impl Leases {
    pub fn new() -> Leases {
        Leases::default()
    }

    pub fn check_ttl(ttl_ms: u64) -> Result<Duration, ApiError> {
        let ttl = Duration::from_millis(ttl_ms);
        if ttl < MIN_TTL || ttl > MAX_TTL {
            return Err(ApiError::invalid(format!(
                "ttl_ms {ttl_ms} is out of range; use {}..={} ms",
                MIN_TTL.as_millis(),
                MAX_TTL.as_millis()
            )));
        }
        Ok(ttl)
    }

    pub fn create(&self, ttl: Duration) -> LeaseInfo {
        let id = format!("lease-{:016x}", rand::thread_rng().gen::<u64>());
        let now = Instant::now();
        let e = Entry {
            ttl,
            deadline: now + ttl,
        };
        let out = info(&id, &e, now);
        self.table.lock().unwrap().insert(id, e);
        self.changed.notify_one();
        out
    }

    /// Pushes the deadline to now + TTL.
    pub fn renew(&self, id: &str) -> Result<LeaseInfo, ApiError> {
        let now = Instant::now();
        let mut t = self.table.lock().unwrap();
        let e = t
            .get_mut(id)
            .filter(|e| e.deadline > now)
            .ok_or_else(|| not_found(id))?;
        e.deadline = now + e.ttl;
        let out = info(id, e, now);
        drop(t);
        self.changed.notify_one();
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<LeaseInfo, ApiError> {
        let now = Instant::now();
        let t = self.table.lock().unwrap();
        t.get(id)
            .filter(|e| e.deadline > now)
            .map(|e| info(id, e, now))
            .ok_or_else(|| not_found(id))
    }

    /// Removes the lease (its holdings are the caller's to release).
    pub fn revoke(&self, id: &str) -> Result<(), ApiError> {
        let removed = self.table.lock().unwrap().remove(id);
        self.changed.notify_one();
        removed.map(|_| ()).ok_or_else(|| not_found(id))
    }

    pub fn list(&self) -> Vec<LeaseInfo> {
        let now = Instant::now();
        let t = self.table.lock().unwrap();
        let mut v: Vec<_> = t.iter().map(|(id, e)| info(id, e, now)).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least one lease lapses, removes the lapsed ones and
    /// returns their ids.
    pub async fn next_lapsed(&self) -> Vec<String> {
        loop {
            let notified = self.changed.notified();
            let next = {
                let now = Instant::now();
                let mut t = self.table.lock().unwrap();
                let lapsed: Vec<String> = t
                    .iter()
                    .filter(|(_, e)| e.deadline <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                if !lapsed.is_empty() {
                    for id in &lapsed {
                        t.remove(id);
                    }
                    return lapsed;
                }
                t.values().map(|e| e.deadline).min()
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_renewed_lease_lives_and_an_unrenewed_one_lapses() {
        let leases = Leases::new();
        let a = leases.create(Duration::from_secs(2));
        let b = leases.create(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        leases.renew(&a.id).unwrap();
        let lapsed = leases.next_lapsed().await;
        assert_eq!(lapsed, vec![b.id.clone()]);
        assert_eq!(leases.renew(&b.id).unwrap_err().code, Code::LeaseNotFound);
        assert!(leases.get(&a.id).is_ok());
        // Now a lapses too: 2 s after its renewal.
        assert_eq!(leases.next_lapsed().await, vec![a.id.clone()]);
        assert!(leases.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reaper_sees_new_leases() {
        let leases = std::sync::Arc::new(Leases::new());
        let l2 = leases.clone();
        let reaper = tokio::spawn(async move { l2.next_lapsed().await });
        tokio::task::yield_now().await;
        let a = leases.create(Duration::from_secs(1));
        assert_eq!(reaper.await.unwrap(), vec![a.id]);
    }

    #[test]
    fn ttl_bounds() {
        assert!(Leases::check_ttl(100).is_err());
        assert!(Leases::check_ttl(3_600_001).is_err());
        assert_eq!(Leases::check_ttl(5000).unwrap(), Duration::from_secs(5));
    }
}
