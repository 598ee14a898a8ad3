//! Requests against a real in-process server: CRUD and the error codes
//! ZooKeeper defines for them, pipelining order, multi, chroot, digest auth
//! with ACLs, argument checks.

mod common;

use common::{within, InProc};
use zonekeeper_client::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_error_codes() {
    let s = InProc::start().await;
    let c = s.client().await;
    let open = acl_open_unsafe();
    let (path, stat) = c
        .create("/a", b"one", &open, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, "/a");
    assert_eq!(stat.version, 0);
    assert_eq!(
        c.create("/a", b"", &open, CreateMode::Persistent).await,
        Err(Error::Server(ErrorCode::NodeExists))
    );
    assert_eq!(
        c.create("/x/y", b"", &open, CreateMode::Persistent).await,
        Err(Error::Server(ErrorCode::NoNode))
    );
    let (data, stat) = c.get_data("/a").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"one"[..], 0));
    assert_eq!(
        c.set_data("/a", b"two", Some(5)).await,
        Err(Error::Server(ErrorCode::BadVersion))
    );
    let stat = c.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(c.exists("/a").await.unwrap().map(|s| s.version), Some(1));
    assert_eq!(c.exists("/nope").await, Ok(None));
    assert_eq!(c.get_data("/nope").await, Err(Error::Server(ErrorCode::NoNode)));

    let (seq, _) = c
        .create("/a/s-", b"", &open, CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/a/s-0000000000");
    let (eph, stat) = c.create("/a/e", b"", &open, CreateMode::Ephemeral).await.unwrap();
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(
        c.create("/a/e/child", b"", &open, CreateMode::Persistent).await,
        Err(Error::Server(ErrorCode::NoChildrenForEphemerals))
    );
    let (mut kids, stat) = c.get_children("/a").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["e".to_string(), "s-0000000000".to_string()]);
    assert_eq!(stat.num_children, 2);
    assert_eq!(
        c.delete("/a", None).await,
        Err(Error::Server(ErrorCode::NotEmpty))
    );
    c.delete(&eph, Some(0)).await.unwrap();
    c.delete(&seq, None).await.unwrap();
    c.delete("/a", Some(1)).await.unwrap();
    assert_eq!(c.delete("/a", None).await, Err(Error::Server(ErrorCode::NoNode)));
    c.sync("/").await.unwrap();

    // Arguments are checked before anything is sent.
    assert!(matches!(
        c.get_data("relative").await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.get_data("/trailing/").await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.create("/n", b"", &[], CreateMode::Persistent).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(c.last_zxid() > 0);
    c.close().await.unwrap();
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(c.get_data("/").await, Err(Error::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_complete_in_order() {
    let s = InProc::start().await;
    let c = s.client().await;
    c.create("/p", b"", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    // 200 sequential creates issued at once: the server applies a session's
    // requests in order, so sequence numbers follow issue order, and every
    // reply lands at its own caller.
    let futs: Vec<_> = (0..200)
        .map(|i| {
            let c = c.clone();
            async move {
                let data = format!("{i}");
                c.create(
                    "/p/n-",
                    data.as_bytes(),
                    &acl_open_unsafe(),
                    CreateMode::PersistentSequential,
                )
                .await
            }
        })
        .collect();
    // join_all polls the futures in order, and each hands its request to
    // the session on its first poll: issue order is the vector's order.
    let paths: Vec<String> = within("200 pipelined creates", futures::future::join_all(futs))
        .await
        .into_iter()
        .map(|r| r.unwrap().0)
        .collect();
    for (i, p) in paths.iter().enumerate() {
        let (data, _) = c.get_data(p).await.unwrap();
        assert_eq!(String::from_utf8(data).unwrap(), i.to_string(), "{p}");
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, paths, "sequence numbers follow issue order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_commits_all_or_reports_per_op() {
    let s = InProc::start().await;
    let c = s.client().await;
    let open = acl_open_unsafe();
    let r = c
        .multi(vec![
            Op::Create {
                path: "/m".into(),
                data: b"x".to_vec(),
                acl: open.clone(),
                mode: CreateMode::Persistent,
            },
            Op::SetData {
                path: "/m".into(),
                data: b"y".to_vec(),
                version: Some(0),
            },
            Op::Check {
                path: "/m".into(),
                version: Some(1),
            },
        ])
        .await
        .unwrap();
    assert!(matches!(&r[0], OpResult::Create { path, .. } if path == "/m"));
    assert!(matches!(&r[1], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(r[2], OpResult::Check);
    let failing = vec![
        Op::Check {
            path: "/m".into(),
            version: Some(7),
        },
        Op::Delete {
            path: "/m".into(),
            version: None,
        },
    ];
    assert_eq!(
        c.multi(failing.clone()).await,
        Err(Error::Server(ErrorCode::BadVersion))
    );
    let detail = c.multi_results(failing).await.unwrap();
    assert_eq!(
        detail,
        vec![
            OpResult::Error(ErrorCode::BadVersion),
            OpResult::Error(ErrorCode::RuntimeInconsistency)
        ]
    );
    assert_eq!(
        c.get_data("/m").await.unwrap().0,
        b"y",
        "nothing of the failed multi applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_prefixes_and_strips_paths() {
    let s = InProc::start().await;
    let root = s.client().await;
    root.create("/app", b"", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let cfg = ClientConfig::new(format!("{}/app", s.connect_string()).parse().unwrap());
    let c = within("connect", Client::connect(cfg)).await.unwrap();
    let (p, _) = c
        .create("/x-", b"", &acl_open_unsafe(), CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(p, "/x-0000000000");
    assert!(root.exists("/app/x-0000000000").await.unwrap().is_some());
    assert_eq!(
        c.get_children("/").await.unwrap().0,
        vec!["x-0000000000".to_string()]
    );
    let (_, w) = c.exists_w("/y").await.unwrap();
    root.create("/app/y", b"", &acl_open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let ev = within("the chrooted watch", w.changed()).await.unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeCreated, "/y"));
    let r = c
        .multi(vec![Op::Create {
            path: "/z".into(),
            data: vec![],
            acl: acl_open_unsafe(),
            mode: CreateMode::Persistent,
        }])
        .await
        .unwrap();
    assert!(matches!(&r[0], OpResult::Create { path, .. } if path == "/z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_and_acls() {
    let s = InProc::start().await;
    let alice = s.client_with(|c| c.with_auth("digest", "alice:secret")).await;
    let anon = s.client().await;
    alice
        .create("/private", b"p", &acl_creator_all(), CreateMode::Persistent)
        .await
        .unwrap();
    let (acl, _) = alice.get_acl("/private").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id, digest_id("alice", "secret"));
    assert_eq!(
        anon.get_data("/private").await,
        Err(Error::Server(ErrorCode::NoAuth))
    );
    assert_eq!(alice.get_data("/private").await.unwrap().0, b"p");
    // A second client with the same credentials is the same principal.
    let alice2 = s.client_with(|c| c.with_auth("digest", "alice:secret")).await;
    alice2.set_data("/private", b"q", None).await.unwrap();
    // Opening it up to readers.
    let mut acl = acl_read_unsafe();
    acl.push(Acl {
        perms: perms::ALL,
        id: digest_id("alice", "secret"),
    });
    alice.set_acl("/private", &acl, Some(0)).await.unwrap();
    assert_eq!(anon.get_data("/private").await.unwrap().0, b"q");
    assert_eq!(
        anon.set_data("/private", b"r", None).await,
        Err(Error::Server(ErrorCode::NoAuth))
    );
    assert_eq!(
        anon.create("/bad", b"", &acl_creator_all(), CreateMode::Persistent)
            .await,
        Err(Error::Server(ErrorCode::InvalidAcl)),
        "auth ACL without an authenticated id"
    );
}
