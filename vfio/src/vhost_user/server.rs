//! The listening socket: one VMM connection at a time per device; when it
//! ends (VMM gone, or it reset the device) the rings are stopped and the next
//! connection is accepted, which is what a VMM whose chardev reconnects needs
//! after either side restarted.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vhost::vhost_user::BackendReqHandler;

use super::backend_req;
use super::handler::BlkHandler;
use crate::blk::ConfigNotifier;
use crate::poller::SharedDevice;

/// A vhost-user-blk server for one device.
#[derive(Debug)]
pub struct BlkServer {
    path: PathBuf,
    listener: UnixListener,
    dev: SharedDevice,
}

impl BlkServer {
    /// Binds `path` (an existing socket file there is replaced).
    pub fn bind(path: &Path, dev: SharedDevice) -> std::io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        Ok(BlkServer {
            path: path.to_path_buf(),
            listener,
            dev,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections one after another until `stop` is set (checked
    /// between connections and every 100 ms while waiting for one).
    pub fn run(&self, stop: &AtomicBool) -> std::io::Result<()> {
        self.listener.set_nonblocking(true)?;
        while !stop.load(Ordering::Relaxed) {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(e),
            };
            stream.set_nonblocking(false)?;
            let peek = stream.try_clone()?;
            let handler = Arc::new(Mutex::new(BlkHandler::new(Arc::clone(&self.dev))));
            let mut conn = BackendReqHandler::from_stream(stream, Arc::clone(&handler));
            loop {
                // The back-end request channel, kept for config-change
                // notifications (see `crate::blk::notify`): taken here, then
                // installed if the vhost crate accepted the message.
                let channel = backend_req::peek_channel(&peek).unwrap_or(None);
                match conn.handle_request() {
                    Ok(()) => {
                        if let Some(fd) = channel {
                            self.dev
                                .lock()
                                .set_config_notifier(Some(ConfigNotifier::new(fd)));
                        }
                    }
                    Err(vhost::vhost_user::Error::Disconnected)
                    | Err(vhost::vhost_user::Error::PartialMessage) => break,
                    Err(e) => {
                        eprintln!(
                            "vhost-user-blk {}: connection ended: {e}",
                            self.path.display()
                        );
                        break;
                    }
                }
            }
            handler.lock().expect("handler lock").disconnect();
            self.dev.lock().set_config_notifier(None);
        }
        Ok(())
    }
}

impl Drop for BlkServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
