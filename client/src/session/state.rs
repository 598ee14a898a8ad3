//! The pure part of the session: xids, requests sent and awaiting their
//! reply (FIFO: ZooKeeper answers a session's requests in order), the last
//! zxid seen, and request deadlines. Time is passed in.
