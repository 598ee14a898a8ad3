//! The session task.

use crate::chroot::Chroot;
use crate::config::ClientConfig;
use crate::error::Error;

use super::Handle;

pub(crate) async fn start(_config: ClientConfig, _chroot: Chroot) -> Result<Handle, Error> {
    Err(Error::Protocol("not implemented yet".into()))
}
