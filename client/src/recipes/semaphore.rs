//! Semaphore with N permits. Acquirers queue on an internal exclusive lock
//! (`<path>/lock`, herd-free); its holder creates its lease
//! (`<path>/leases/lease-<guid>-<seq>`, ephemeral sequential) and, while
//! more than N leases exist, waits on the leases' child list — it is the
//! only process watching it. Once its lease is among at most N, it is
//! granted and releases the internal lock. Since leases are created one
//! at a time by the internal lock's holder, permit tokens (lease czxids)
//! strictly increase in grant order (`docs/recipes.md`, "Fencing tokens").

use std::time::Duration;

use super::{
    check_owner, check_path, child, create_protected, deadline_of, delete_quietly, encode_holder_data,
    new_guid, retry, retry_until, sort_entries, until, wait_for_grant, AttemptCleanup, LockGuard,
    RecipeError,
};
use crate::{Client, CreateMode, Error, ErrorCode};

/// A held permit: release it like a lock grant.
pub type Permit = LockGuard;

const LOCK: &str = "lock";
const LEASE: &str = "lease";

/// A distributed counting semaphore at a path. Every participant must use
/// the same number of permits.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    path: String,
    lock_dir: String,
    leases_dir: String,
    permits: u32,
    owner: Option<String>,
    data: Vec<u8>,
}

impl Semaphore {
    /// A semaphore of `permits` (at least 1) under `path`.
    pub fn new(client: Client, path: &str, permits: u32) -> Result<Semaphore, RecipeError> {
        let path = check_path(path)?;
        if permits == 0 {
            return Err(RecipeError::InvalidName(
                "a semaphore needs at least one permit".into(),
            ));
        }
        Ok(Semaphore {
            client,
            lock_dir: child(&path, "lock"),
            leases_dir: child(&path, "leases"),
            path,
            permits,
            owner: None,
            data: Vec::new(),
        })
    }

    /// Labels permits with `owner`.
    pub fn with_owner(mut self, owner: &str) -> Result<Semaphore, RecipeError> {
        check_owner(owner)?;
        self.owner = Some(owner.to_string());
        Ok(self)
    }

    /// Data stored in the lease node.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Semaphore {
        self.data = data.into();
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Waits for a permit; `timeout` as [`super::Lock::acquire`].
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<Permit, RecipeError> {
        let deadline = deadline_of(timeout);
        let guid = new_guid();
        let cleanup = AttemptCleanup::new(
            &self.client,
            vec![self.lock_dir.clone(), self.leases_dir.clone()],
            &guid,
        );
        let c = &self.client;
        let attempt = async {
            let marker = encode_holder_data(self.owner.as_deref(), b"");
            let (lock_node, _) = create_protected(
                c,
                &self.lock_dir,
                LOCK,
                &guid,
                &marker,
                CreateMode::EphemeralSequential,
                deadline,
            )
            .await?;
            wait_for_grant(c, &self.lock_dir, &lock_node, &guid, &[LOCK], deadline, |_, i| {
                i.checked_sub(1)
            })
            .await?;
            let body = encode_holder_data(self.owner.as_deref(), &self.data);
            let (lease, stat) = create_protected(
                c,
                &self.leases_dir,
                LEASE,
                &guid,
                &body,
                CreateMode::EphemeralSequential,
                deadline,
            )
            .await?;
            let lease_name = lease.rsplit('/').next().unwrap_or_default().to_string();
            loop {
                let ((kids, _), w) = retry_until(c, deadline, || c.get_children_w(&self.leases_dir)).await?;
                let leases = sort_entries(kids, &[LEASE]);
                let mut ghosts = false;
                for e in leases
                    .iter()
                    .filter(|e| e.name != lease_name && e.name.contains(&guid))
                {
                    delete_quietly(c, &child(&self.leases_dir, &e.name)).await?;
                    ghosts = true;
                }
                if ghosts {
                    continue;
                }
                if !leases.iter().any(|e| e.name == lease_name) {
                    return Err(RecipeError::NotHeld(lease.clone()));
                }
                if leases.len() <= self.permits as usize {
                    break;
                }
                until(deadline, w.changed()).await??;
            }
            // Granted: let the next acquirer in.
            delete_quietly(c, &lock_node).await?;
            Ok::<_, RecipeError>(LockGuard::new(c, lease, &stat))
        };
        match attempt.await {
            Ok(p) => {
                cleanup.disarm();
                Ok(p)
            }
            Err(e) => {
                cleanup.run().await;
                Err(e)
            }
        }
    }

    /// Takes a permit if one is free now; `None` if none is, or another
    /// acquirer is already waiting for one.
    pub async fn try_acquire(&self) -> Result<Option<Permit>, RecipeError> {
        match self.acquire(Some(Duration::ZERO)).await {
            Ok(p) => Ok(Some(p)),
            Err(RecipeError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Returns a permit (deletes its lease).
    pub async fn release(&self, permit: Permit) -> Result<(), RecipeError> {
        permit.release().await
    }

    /// The permit holders now (the oldest `permits` leases; a lease beyond
    /// them belongs to an acquirer still waiting).
    pub async fn holders(&self) -> Result<Vec<super::Holder>, RecipeError> {
        let n = self.permits as usize;
        super::lock::granted_holders(&self.client, &self.leases_dir, &[LEASE], |e| {
            (0..e.len().min(n)).collect()
        })
        .await
    }

    /// How many permits are held now.
    pub async fn held(&self) -> Result<usize, RecipeError> {
        let c = &self.client;
        let kids = retry(c, || async {
            match c.get_children(&self.leases_dir).await {
                Ok((k, _)) => Ok(k),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(sort_entries(kids, &[LEASE]).len().min(self.permits as usize))
    }
}
