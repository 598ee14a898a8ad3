//! One TCP connection to a server: framing and the connect handshake.
