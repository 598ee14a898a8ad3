//! Connected: resuming the session on a new connection, pipelining
//! calls, pings and deadlines, and the planned move back home.

use super::*;

impl Task {
    pub(super) async fn serve(&mut self, mut conn: Conn, server: &ServerAddr) -> Next {
        match self.resume(&mut conn).await {
            Ok(()) => {}
            Err(e) => {
                warn!(server = %server, error = %e, "connection lost while resuming the session");
                return Next::Reconnect;
            }
        }
        let timeout = self.session.timeout;
        let ping_every = timeout / 3;
        let read_timeout = timeout * 2 / 3;
        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        let away = !self.selector.is_home(server) && !self.selector.home_servers().is_empty();
        let mut next_probe = Instant::now() + self.config.return_home_interval;
        let mut probing: Option<JoinHandle<Option<ServerAddr>>> = None;
        let mut draining: Option<ServerAddr> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let next = loop {
            tokio::select! {
                r = conn.read_packet() => {
                    last_recv = Instant::now();
                    let packet = match r {
                        Ok(p) => p,
                        Err(e) => {
                            warn!(server = %server, error = %e, "connection lost");
                            break Next::Reconnect;
                        }
                    };
                    match self.on_packet(&packet, &mut conn).await {
                        Ok(None) => {}
                        Ok(Some(end)) => break Next::End(end),
                        Err(e) => {
                            warn!(server = %server, error = %e, "connection dropped");
                            break Next::Reconnect;
                        }
                    }
                }
                cmd = self.rx.recv(), if !self.rx_closed => {
                    let close = match cmd {
                        Some(Command::Call(call)) => {
                            self.enqueue(call);
                            false
                        }
                        Some(Command::Close(reply)) => self.start_closing(Some(reply)),
                        None => {
                            self.rx_closed = true;
                            self.start_closing(None)
                        }
                    };
                    let res = if close {
                        self.send_close(&mut conn).await
                    } else if draining.is_none() {
                        self.flush(&mut conn).await
                    } else {
                        Ok(())
                    };
                    last_send = Instant::now();
                    if let Err(e) = res {
                        warn!(server = %server, error = %e, "connection lost while sending");
                        break Next::Reconnect;
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now.duration_since(last_recv) >= read_timeout {
                        warn!(server = %server, silent_ms = now.duration_since(last_recv).as_millis() as u64,
                            "nothing heard from the server for two thirds of the session timeout; reconnecting");
                        break Next::Reconnect;
                    }
                    if self.session.sent_overdue(now, self.config.request_timeout) {
                        warn!(server = %server, "a request got no reply within the request timeout; reconnecting");
                        break Next::Reconnect;
                    }
                    if let Some(c) = &self.closing {
                        if now.duration_since(c.since) >= self.config.request_timeout {
                            warn!("the server did not confirm closeSession in time; the session will expire");
                            break Next::End(End::Closed);
                        }
                    }
                    self.session.expire_queued(now, self.config.request_timeout);
                    if now.duration_since(last_send) >= ping_every {
                        last_send = now;
                        if let Err(e) = conn.send(&encode(xid::PING, OpCode::Ping, &RequestBody::Ping)).await {
                            warn!(server = %server, error = %e, "connection lost while pinging");
                            break Next::Reconnect;
                        }
                    }
                    if away && probing.is_none() && draining.is_none() && self.closing.is_none() && now >= next_probe {
                        probing = Some(self.spawn_home_probe());
                    }
                }
                found = async { probing.as_mut().expect("guarded").await }, if probing.is_some() => {
                    probing = None;
                    next_probe = Instant::now() + self.config.return_home_interval;
                    if let Ok(Some(home)) = found {
                        if self.closing.is_none() {
                            info!(server = %server, home = %home, in_flight = self.session.sent.len(),
                                "an own-zone server is healthy; draining in-flight requests to move back");
                            draining = Some(home);
                        }
                    }
                }
            }
            if let Some(home) = &draining {
                if self.session.sent.is_empty() {
                    break Next::MoveTo(home.clone());
                }
            }
        };
        if let Some(p) = probing {
            p.abort();
        }
        next
    }

    /// Probes the own-zone servers (random order); the first healthy one
    /// that has caught up with our last zxid.
    fn spawn_home_probe(&self) -> JoinHandle<Option<ServerAddr>> {
        let mut homes = self.selector.home_servers();
        homes.shuffle(&mut rand::thread_rng());
        let last_zxid = self.session.last_zxid;
        let timeout = self.config.connect_timeout;
        tokio::spawn(async move {
            for h in homes {
                match probe(&h, timeout).await {
                    Some(p) if p.zxid >= last_zxid => return Some(h),
                    Some(p) => {
                        debug!(server = %h, zxid = p.zxid, last_zxid, "own-zone server behind; not moving yet")
                    }
                    None => debug!(server = %h, "own-zone server not healthy yet"),
                }
            }
            None
        })
    }

    /// After the handshake: authentications, watches, then queued calls (or
    /// the closeSession of a close that waited for a connection).
    async fn resume(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        for (scheme, auth) in &self.config.auth {
            let body = RequestBody::Auth(AuthPacket {
                type_: 0,
                scheme: scheme.clone(),
                auth: auth.clone(),
            });
            conn.send(&encode(xid::AUTH, OpCode::Auth, &body)).await?;
        }
        let packets = self.watches.set_watches(self.session.last_zxid);
        if !packets.is_empty() {
            debug!(
                watches = self.watches.len(),
                packets = packets.len(),
                relative_zxid = self.session.last_zxid,
                "re-registering watches"
            );
        }
        for w in packets {
            conn.send(&encode(
                xid::SET_WATCHES,
                OpCode::SetWatches2,
                &RequestBody::SetWatches(w),
            ))
            .await?;
        }
        if self.closing.is_some() {
            return self.send_close(conn).await;
        }
        self.flush(conn).await
    }

    async fn flush(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        let now = Instant::now();
        while let Some(packet) = self.session.send_next(now) {
            Shared::count(&self.shared.requests);
            conn.send(&packet).await?;
        }
        Ok(())
    }

    async fn send_close(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        info!(session = %hex(self.session.session_id), "closing the session");
        let (reply, _) = oneshot::channel();
        self.send_internal(conn, OpCode::CloseSession, RequestBody::CloseSession, reply)
            .await
    }

    /// Sends a request whose reply nobody awaits (closeSession,
    /// removeWatches).
    pub(super) async fn send_internal(
        &mut self,
        conn: &mut Conn,
        op: OpCode,
        body: RequestBody,
        reply: oneshot::Sender<Result<ResponseBody, Error>>,
    ) -> Result<(), ConnError> {
        let xid = self.session.next_xid();
        let packet = encode(xid, op, &body);
        self.session.sent.push_back(Sent {
            xid,
            call: Call {
                op,
                body,
                watch: None,
                reply,
            },
            since: Instant::now(),
        });
        conn.send(&packet).await?;
        Ok(())
    }
}
