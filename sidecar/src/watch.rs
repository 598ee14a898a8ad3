//! Watches over HTTP, two ways, from one source: a stream of JSON snapshots
//! of the watched thing (a group's members, an election's leader, a key).
//!
//! - Server-Sent Events: every distinct snapshot is an `event: snapshot`
//!   whose `id:` is its etag and whose data is the snapshot (with `etag`);
//!   an ensemble failure is an `event: error` with our error body, then the
//!   stream ends (reconnect to resume; the first event is the current state).
//! - Long-poll: `GET …?etag=E&wait_ms=W` answers as soon as the snapshot's
//!   etag differs from `E`, or after `W` ms with the unchanged snapshot.
//!
//! The etag is a hash of the snapshot's JSON: equal content, equal etag.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::metrics::Metrics;

/// Snapshots of a watched thing, the current state first.
pub type Snapshots = BoxStream<'static, ApiResult<Value>>;

/// Longest long-poll wait.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// FNV-1a of the snapshot's JSON text, as 16 hex digits. Stable across
/// processes and versions (unlike `DefaultHasher`).
pub fn etag(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `v` (an object) with its `etag` field set.
pub fn with_etag(mut v: Value) -> (Value, String) {
    if let Some(o) = v.as_object_mut() {
        o.remove("etag");
    }
    let tag = etag(&v);
    if let Some(o) = v.as_object_mut() {
        o.insert("etag".into(), Value::String(tag.clone()));
    }
    (v, tag)
}

/// Counts an open watcher in the metrics while alive.
struct WatcherGuard(Arc<Metrics>);

impl WatcherGuard {
    fn new(m: Arc<Metrics>) -> WatcherGuard {
        m.watchers.inc();
        WatcherGuard(m)
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.dec();
    }
}

/// The snapshots as SSE, consecutive duplicates dropped, ending after the
/// first error.
pub fn sse(
    snapshots: Snapshots,
    metrics: Arc<Metrics>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let guard = WatcherGuard::new(metrics);
    let events = futures::stream::unfold(
        (snapshots, None::<String>, false, guard),
        |(mut s, mut last, done, guard)| async move {
            if done {
                return None;
            }
            loop {
                match s.next().await? {
                    Ok(v) => {
                        let (v, tag) = with_etag(v);
                        if last.as_deref() == Some(tag.as_str()) {
                            continue;
                        }
                        last = Some(tag.clone());
                        let ev = Event::default().event("snapshot").id(tag).data(v.to_string());
                        return Some((Ok(ev), (s, last, false, guard)));
                    }
                    Err(e) => {
                        let body = ErrorBody {
                            code: e.code,
                            message: e.message,
                        };
                        let data = serde_json::to_string(&body).unwrap_or_default();
                        let ev = Event::default().event("error").data(data);
                        return Some((Ok(ev), (s, last, true, guard)));
                    }
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Long-poll: the first snapshot whose etag is not `after`, or the current
/// one once `wait` has passed. Without `after` (or with no wait), the
/// current snapshot at once.
pub async fn long_poll(
    mut snapshots: Snapshots,
    after: Option<&str>,
    wait: Duration,
    metrics: Arc<Metrics>,
) -> ApiResult<Value> {
    let _guard = WatcherGuard::new(metrics);
    let first = snapshots
        .next()
        .await
        .ok_or_else(|| ApiError::internal("the watch ended before its first snapshot"))??;
    let (mut current, tag) = with_etag(first);
    if after != Some(tag.as_str()) || wait.is_zero() {
        return Ok(current);
    }
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        match tokio::time::timeout_at(deadline, snapshots.next()).await {
            Err(_) => return Ok(current),
            Ok(None) => return Ok(current),
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(v))) => {
                let (v, t) = with_etag(v);
                if Some(t.as_str()) != after {
                    return Ok(v);
                }
                current = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snaps(v: Vec<ApiResult<Value>>) -> Snapshots {
        futures::stream::iter(v).chain(futures::stream::pending()).boxed()
    }

    #[test]
    fn etag_depends_on_content_only() {
        let (a, ta) = with_etag(json!({"members": ["x"]}));
        let (_, tb) = with_etag(json!({"members": ["x"], "etag": "stale"}));
        let (_, tc) = with_etag(json!({"members": ["y"]}));
        assert_eq!(ta, tb);
        assert_ne!(ta, tc);
        assert_eq!(a["etag"], ta);
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_returns_on_change_or_after_the_wait() {
        let m = Arc::new(Metrics::new());
        let (_, t1) = with_etag(json!({"v": 1}));
        // No etag: the current state at once.
        let v = long_poll(
            snaps(vec![Ok(json!({"v": 1}))]),
            None,
            Duration::from_secs(5),
            m.clone(),
        )
        .await
        .unwrap();
        assert_eq!(v["v"], 1);
        // Same etag, then a change.
        let v = long_poll(
            snaps(vec![
                Ok(json!({"v": 1})),
                Ok(json!({"v": 1})),
                Ok(json!({"v": 2})),
            ]),
            Some(&t1),
            Duration::from_secs(5),
            m.clone(),
        )
        .await
        .unwrap();
        assert_eq!(v["v"], 2);
        // Same etag and nothing else: the unchanged snapshot after the wait.
        let v = long_poll(
            snaps(vec![Ok(json!({"v": 1}))]),
            Some(&t1),
            Duration::from_secs(5),
            m.clone(),
        )
        .await
        .unwrap();
        assert_eq!(v["etag"], t1.as_str());
        assert_eq!(m.watchers.get(), 0);
    }
}
