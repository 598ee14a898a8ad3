//! Leader election and group membership against a real server with several
//! sessions: one leader at a time with its data visible to observers,
//! leadership moving when the leader resigns, closes its session or has it
//! expire, terms strictly increasing, observers watching only the leader;
//! member lists converging after joins, leaves, closes and expiry; member
//! name rules and ownership.

mod recipes_common;

use std::time::Duration;

use recipes_common::*;
use zonekeeper_client::recipes::{self, Election, Group, LeaderInfo, Lost, RecipeError};

/// Waits until the watch yields a value satisfying `pred`, returning it.
async fn leader_until(
    w: &mut zonekeeper_client::recipes::LeaderWatch,
    what: &str,
    pred: impl Fn(&Option<LeaderInfo>) -> bool,
) -> Option<LeaderInfo> {
    within(what, async {
        loop {
            let v = w.next().await.expect("leader watch");
            if pred(&v) {
                return v;
            }
        }
    })
    .await
}

/// Three candidates: exactly one leads, observers see its data and term;
/// leadership moves on resign, on close of the leader's session, and on
/// expiry of the leader's session, each time with a higher term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_on_resign_close_and_expiry_with_increasing_terms() {
    let ts = TestServer::start().await;
    let observer = ts.client().await;
    let (c0, c1) = (ts.client().await, ts.client().await);
    let (c2, relay) = ts.cuttable_client().await;
    let watch_el = Election::new(observer.clone(), "/elect").unwrap();
    let mut w = watch_el.watch();
    assert_eq!(within("first watch value", w.next()).await.unwrap(), None);

    let e0 = Election::new(c0.clone(), "/elect")
        .unwrap()
        .with_data(b"c0".to_vec());
    let l0 = within("c0 elected", e0.campaign(None)).await.unwrap();
    let seen = leader_until(&mut w, "c0 seen", |v| v.is_some()).await.unwrap();
    assert_eq!(
        (seen.data.as_slice(), seen.term, seen.node.as_str()),
        (&b"c0"[..], l0.term, l0.node.as_str())
    );

    // Others queue behind the leader.
    let e1 = Election::new(c1.clone(), "/elect")
        .unwrap()
        .with_data(b"c1".to_vec());
    let e2 = Election::new(c2.clone(), "/elect")
        .unwrap()
        .with_owner("app-2")
        .unwrap()
        .with_data(b"c2".to_vec());
    let t1 = tokio::spawn(async move { e1.campaign(None).await });
    eventually("c1 to queue", || async {
        observer.get_children("/elect").await.unwrap().0.len() == 2
    })
    .await;
    let t2 = tokio::spawn(async move { e2.campaign(None).await });
    eventually("c2 to queue", || async {
        observer.get_children("/elect").await.unwrap().0.len() == 3
    })
    .await;
    assert!(
        !t1.is_finished() && !t2.is_finished(),
        "a second leader while c0 leads"
    );
    assert_eq!(watch_el.leader().await.unwrap().unwrap().data, b"c0");

    // Resign: c1 leads.
    l0.resign().await.unwrap();
    let l1 = within("c1 elected", t1).await.unwrap().unwrap();
    assert!(l1.term > seen.term);
    let seen1 = leader_until(&mut w, "c1 seen", |v| v.as_ref().is_some_and(|l| l.data == b"c1"))
        .await
        .unwrap();
    assert_eq!(seen1.term, l1.term);
    assert!(!t2.is_finished());

    // Close c1's session: c2 leads.
    c1.close().await.unwrap();
    let l2 = within("c2 elected", t2).await.unwrap().unwrap();
    assert!(l2.term > l1.term);
    let seen2 = leader_until(&mut w, "c2 seen", |v| v.as_ref().is_some_and(|l| l.data == b"c2"))
        .await
        .unwrap();
    assert_eq!((seen2.term, seen2.owner.as_deref()), (l2.term, Some("app-2")));

    // c0 campaigns again, then c2's session expires: c0 leads with a new,
    // higher term.
    let t0 = tokio::spawn(async move { e0.campaign(None).await });
    eventually("c0 to queue", || async {
        observer.get_children("/elect").await.unwrap().0.len() == 2
    })
    .await;
    let node2 = l2.node.clone();
    expire_session(&c2, &relay, || async {
        observer.exists(&node2).await.unwrap().is_none()
    })
    .await;
    assert_eq!(within("c2 lost()", l2.lost()).await, Lost::SessionExpired);
    let l0b = within("c0 re-elected", t0).await.unwrap().unwrap();
    assert!(l0b.term > l2.term);
    let seen3 = leader_until(&mut w, "c0 seen again", |v| {
        v.as_ref().is_some_and(|l| l.term == l0b.term)
    })
    .await;
    assert_eq!(seen3.unwrap().data, b"c0");
    ts.shutdown().await;
}

/// Observers watch the leader's node only: candidates joining behind the
/// leader register no child watch on the election directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_watch_the_leader_not_the_candidates() {
    let ts = TestServer::start().await;
    let observers = ts.clients(3).await;
    let cands = ts.clients(3).await;
    let mut sessions: Vec<i64> = observers.iter().map(|c| c.session_id()).collect();
    sessions.extend(cands.iter().map(|c| c.session_id()));
    let lead = Election::new(cands[0].clone(), "/obs")
        .unwrap()
        .campaign(None)
        .await
        .unwrap();
    let mut watches = Vec::new();
    for o in &observers {
        let mut w = Election::new(o.clone(), "/obs").unwrap().watch();
        assert_eq!(w.next().await.unwrap().unwrap().term, lead.term);
        watches.push(w);
    }
    let mut waiting = Vec::new();
    for c in &cands[1..] {
        let e = Election::new(c.clone(), "/obs").unwrap();
        waiting.push(tokio::spawn(async move { e.campaign(None).await }));
    }
    eventually("candidates to queue", || async {
        observers[0].get_children("/obs").await.unwrap().0.len() == 3
    })
    .await;
    let (data, child) = ts.watchers_under(&lead.node, "/obs", &sessions);
    assert!(child.is_empty(), "child watches on the election: {child:x?}");
    // The leader's node: the three observers and the next candidate.
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].1.len(), 4, "{data:?}");
    lead.resign().await.unwrap();
    for w in &mut watches {
        let next = within("the next leader", w.next()).await.unwrap().unwrap();
        assert_ne!(next.session_id, cands[0].session_id());
    }
    for t in waiting {
        t.abort();
    }
    ts.shutdown().await;
}

/// Campaign with a timeout withdraws the candidacy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_timeout_withdraws() {
    let ts = TestServer::start().await;
    let (a, b) = (ts.client().await, ts.client().await);
    let la = Election::new(a.clone(), "/el2")
        .unwrap()
        .campaign(None)
        .await
        .unwrap();
    let eb = Election::new(b.clone(), "/el2").unwrap();
    assert_eq!(
        eb.campaign(Some(Duration::from_millis(50))).await.unwrap_err(),
        RecipeError::Timeout
    );
    assert_eq!(a.get_children("/el2").await.unwrap().0.len(), 1);
    assert!(la.is_leader().await.unwrap());
    ts.shutdown().await;
}

/// Waits until the watch yields exactly the members `want`.
async fn converge(w: &mut recipes::GroupWatch, want: &[&str]) -> Vec<recipes::Member> {
    within("member list to converge", async {
        loop {
            let l = w.next().await.unwrap();
            if l.iter().map(|m| m.name.as_str()).collect::<Vec<_>>() == want {
                return l;
            }
        }
    })
    .await
}

/// Membership converges: four sessions join with data; observers see the
/// full list; then one leaves, one closes its session, one has it expire,
/// and the list converges to the remaining member each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_lists_converge_after_joins_leaves_and_session_loss() {
    let ts = TestServer::start().await;
    let observer = ts.client().await;
    let members = ts.clients(3).await;
    let (expiring, relay) = ts.cuttable_client().await;
    let group = Group::new(observer.clone(), "/groups/workers").unwrap();
    let mut w = group.watch();
    assert!(within("empty list", w.next()).await.unwrap().is_empty());

    let mut all = members.clone();
    all.push(expiring.clone());
    let mut joined = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let g = Group::new(c.clone(), "/groups/workers").unwrap();
        let owner = format!("app-{i}");
        joined.push(
            g.join(&format!("m{i}"), Some(&owner), format!("addr-{i}").as_bytes())
                .await
                .unwrap(),
        );
    }
    let names = |l: &[recipes::Member]| l.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    let l = converge(&mut w, &["m0", "m1", "m2", "m3"]).await;
    assert_eq!(l[2].data, b"addr-2");
    assert_eq!(l[2].owner.as_deref(), Some("app-2"));
    assert_eq!(l[2].session_id, members[2].session_id());

    Group::new(members[0].clone(), "/groups/workers")
        .unwrap()
        .leave("m0")
        .await
        .unwrap();
    converge(&mut w, &["m1", "m2", "m3"]).await;
    members[1].close().await.unwrap();
    converge(&mut w, &["m2", "m3"]).await;
    let m3 = joined.pop().unwrap();
    expire_session(&expiring, &relay, || async {
        observer.exists(&m3.node).await.unwrap().is_none()
    })
    .await;
    assert_eq!(within("m3 lost()", m3.lost()).await, Lost::SessionExpired);
    converge(&mut w, &["m2"]).await;
    assert_eq!(names(&group.members().await.unwrap()), vec!["m2"]);
    ts.shutdown().await;
}

/// Names: a member name held by another session is MemberExists; the same
/// session and owner joining again is fine (a retried join); another owner
/// of the same session is MemberExists; bad names are InvalidName and
/// create nothing; a sidecar can release another's membership by path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_names_and_ownership() {
    let ts = TestServer::start().await;
    let (a, b) = (ts.client().await, ts.client().await);
    let ga = Group::new(a.clone(), "/g").unwrap();
    let gb = Group::new(b.clone(), "/g").unwrap();
    let m = ga.join("w1", Some("lease-1"), b"x").await.unwrap();
    let _again = ga.join("w1", Some("lease-1"), b"y").await.unwrap();
    assert_eq!(ga.members().await.unwrap()[0].data, b"y");
    assert_eq!(
        ga.join("w1", Some("lease-2"), b"z").await.unwrap_err(),
        RecipeError::MemberExists("w1".into())
    );
    assert_eq!(
        gb.join("w1", None, b"z").await.unwrap_err(),
        RecipeError::MemberExists("w1".into())
    );
    for bad in ["", "a/b", "..", "white space", "zz\u{0}"] {
        assert!(
            matches!(gb.join(bad, None, b"").await, Err(RecipeError::InvalidName(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        gb.join("ok", Some("bad owner"), b"").await,
        Err(RecipeError::InvalidName(_))
    ));
    assert_eq!(ga.members().await.unwrap().len(), 1);
    recipes::release(&b, &m.node).await.unwrap();
    assert!(ga.members().await.unwrap().is_empty());
    assert_eq!(
        gb.leave("w1").await.unwrap_err(),
        RecipeError::NotHeld("/g/w1".into())
    );
    ts.shutdown().await;
}
