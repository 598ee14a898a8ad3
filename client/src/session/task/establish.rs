//! Not connected: finding a server that takes the session (own zone
//! first), queueing calls meanwhile, and the handshake's verdict.

use super::*;

impl Task {
    /// Handles a command while not connected. `Some(end)` stops the task.
    fn on_command_offline(&mut self, cmd: Option<Command>) -> Option<End> {
        match cmd {
            Some(Command::Call(call)) => self.enqueue(call),
            Some(Command::Close(reply)) => {
                if self.session.session_id == 0 {
                    let _ = reply.send(Ok(()));
                    return Some(End::Closed);
                }
                self.start_closing(Some(reply));
            }
            None => {
                self.rx_closed = true;
                if self.session.session_id == 0 {
                    return Some(End::Closed);
                }
                self.start_closing(None);
            }
        }
        None
    }

    /// Deadlines while not connected.
    fn tick_offline(&mut self, started: Instant) -> Option<End> {
        let now = Instant::now();
        let timeout = self.config.request_timeout;
        self.session.expire_queued(now, timeout);
        if self.ready.is_some() && now.duration_since(started) >= timeout {
            warn!(servers = %self.config.servers, "no server accepted a session within the request timeout");
            return Some(End::NeverConnected(Error::Timeout));
        }
        if let Some(c) = &self.closing {
            if now.duration_since(c.since) >= timeout {
                warn!("closing: no server reachable to close the session on; it will expire");
                return Some(End::Closed);
            }
        }
        None
    }

    pub(super) async fn establish(&mut self) -> Result<(Conn, ServerAddr), End> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut order = self.selector.round(&mut rand::thread_rng());
            if let Some(t) = self.target.take() {
                order.retain(|s| s != &t);
                order.insert(0, t);
            }
            for server in order {
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.session.last_zxid,
                    timeout: self.config.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    session_id: self.session.session_id,
                    passwd: self.session.passwd.clone(),
                    read_only: Some(false),
                };
                let attempt = Conn::open(&server, &req, self.config.connect_timeout);
                tokio::pin!(attempt);
                let result = loop {
                    tokio::select! {
                        r = &mut attempt => break r,
                        cmd = self.rx.recv(), if !self.rx_closed => {
                            if let Some(end) = self.on_command_offline(cmd) {
                                return Err(end);
                            }
                        }
                        _ = tokio::time::sleep(TICK) => {
                            if let Some(end) = self.tick_offline(started) {
                                return Err(end);
                            }
                        }
                    }
                };
                match result {
                    Ok((conn, resp)) => match self.accept(&server, resp) {
                        Ok(true) => return Ok((conn, server.clone())),
                        Ok(false) => Shared::count(&self.shared.failed_attempts),
                        Err(end) => return Err(end),
                    },
                    Err(e) => {
                        Shared::count(&self.shared.failed_attempts);
                        debug!(server = %server, error = %e, "connection attempt failed; trying the next server")
                    }
                }
            }
            let pause = tokio::time::sleep(backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    cmd = self.rx.recv(), if !self.rx_closed => {
                        if let Some(end) = self.on_command_offline(cmd) {
                            return Err(end);
                        }
                    }
                    _ = tokio::time::sleep(TICK) => {
                        if let Some(end) = self.tick_offline(started) {
                            return Err(end);
                        }
                    }
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Takes the server's answer to the handshake: `Ok(true)` connected,
    /// `Ok(false)` try another server, `Err` the session is over.
    fn accept(&mut self, server: &ServerAddr, resp: ConnectResponse) -> Result<bool, End> {
        if resp.timeout <= 0 {
            if self.session.session_id != 0 {
                return Err(End::Expired);
            }
            debug!(server = %server, "server answered a new session with a zero timeout; trying another");
            return Ok(false);
        }
        if self.session.session_id != 0 && resp.session_id != self.session.session_id {
            warn!(server = %server, "server answered with another session id; treating the session as expired");
            return Err(End::Expired);
        }
        let resumed = self.session.session_id != 0;
        Shared::count(&self.shared.connects);
        self.session.session_id = resp.session_id;
        *self.shared.passwd.lock().unwrap_or_else(|p| p.into_inner()) = resp.passwd.clone();
        self.session.passwd = resp.passwd;
        self.session.timeout = Duration::from_millis(resp.timeout as u64);
        self.shared.session_id.store(resp.session_id, Ordering::Relaxed);
        info!(session = %hex(resp.session_id), server = %server, timeout_ms = resp.timeout,
            home = self.selector.is_home(server), resumed, "connected");
        self.set_state(SessionState::Connected {
            server: server.clone(),
        });
        if let Some(r) = self.ready.take() {
            let _ = r.send(Ok(()));
        }
        Ok(true)
    }
}
