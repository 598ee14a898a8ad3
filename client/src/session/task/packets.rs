//! One packet from the server: notifications, replies to the reserved
//! xids, and replies to calls (FIFO matching, watch registration).

use super::*;

impl Task {
    /// One packet from the server. `Ok(Some(end))` ends the session;
    /// `Err` drops the connection.
    pub(super) async fn on_packet(
        &mut self,
        packet: &[u8],
        conn: &mut Conn,
    ) -> Result<Option<End>, ConnError> {
        let (h, body) =
            decode_reply_header(packet).map_err(|e| ConnError::Bad(format!("reply header: {e}")))?;
        match h.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut Reader::new(body))
                    .map_err(|e| ConnError::Bad(format!("notification: {e}")))?;
                let Some(event_type) = event_type(ev.type_) else {
                    debug!(type_ = ev.type_, "ignoring an unknown event type");
                    return Ok(None);
                };
                if event_type == EventType::None {
                    return Ok(None);
                }
                let gone = self.watches.dispatch(event_type, &ev.path, h.zxid, &self.chroot);
                for (recursive, path) in gone {
                    let type_ = if recursive {
                        WatcherType::PersistentRecursive
                    } else {
                        WatcherType::Persistent
                    } as i32;
                    let (reply, _) = oneshot::channel();
                    let body = RequestBody::RemoveWatches(RemoveWatchesRequest { path, type_ });
                    self.send_internal(conn, OpCode::RemoveWatches, body, reply)
                        .await?;
                }
                Ok(None)
            }
            xid::PING => Ok(None),
            xid::AUTH => {
                if h.err != 0 {
                    return Ok(Some(End::AuthFailed));
                }
                Ok(None)
            }
            xid::SET_WATCHES => {
                if h.err != 0 {
                    warn!(err = h.err, "the server refused to re-register watches");
                }
                Ok(None)
            }
            x => {
                let sent = match self.session.take_reply(x) {
                    Matched::Found(s) => s,
                    Matched::OutOfOrder { expected, got } => {
                        return Err(ConnError::Bad(format!(
                            "reply xid {got} out of order (expected {expected:?})"
                        )))
                    }
                };
                self.session.saw_zxid(h.zxid);
                self.shared
                    .last_zxid
                    .store(self.session.last_zxid, Ordering::Relaxed);
                if sent.call.op == OpCode::CloseSession {
                    if h.err != 0 {
                        warn!(
                            err = h.err,
                            "the server refused closeSession; the session will expire instead"
                        );
                    }
                    return Ok(Some(End::Closed));
                }
                self.complete(sent.call, h.err, body);
                Ok(None)
            }
        }
    }

    /// Answers a call and registers its watch.
    fn complete(&mut self, call: Call, err: i32, body: &[u8]) {
        let result = if err == 0 {
            ResponseBody::decode(call.op, body)
                .map_err(|e| Error::Protocol(format!("reply to {:?}: {e}", call.op)))
        } else {
            match ErrorCode::from_code(err) {
                Some(c) => Err(Error::from(c)),
                None => Err(Error::Protocol(format!("unknown error code {err}"))),
            }
        };
        if let Some((path, w)) = call.watch {
            let no_node = result == Err(Error::Server(ErrorCode::NoNode))
                && matches!(w, PendingWatch::Oneshot(WatchKind::Exist, _));
            self.watches.register(&path, w, result.is_ok(), no_node);
        }
        let _ = call.reply.send(result);
    }
}
