//! Accelerator virtual functions configured by management commands.
//!
//! Data flow: the host driver ([`host`]) writes a management command into
//! the BAR0 mailbox ([`regs`], encoded by [`command`]) and rings its
//! doorbell; the device's configuration module ([`config`]) validates it
//! against the physical resources ([`resources`]) and programs the per-VF
//! registers; the host then maps the VF's memory window and work queues and
//! posts jobs ([`job`]) that the device's engine ([`device`]) executes inside
//! the VF's window at the VF's compute quota.

pub mod command;
pub mod config;
pub mod device;
pub mod host;
pub mod job;
pub mod regs;
pub mod resources;
pub mod vfio_bars;

pub use command::{Caps, Command, Completion, VfInfo, VfRequest};
pub use device::{Device, DeviceThread};
pub use host::{Accel, AccelError, VfHandle};
pub use job::{Job, JobOp, JobStatus};
pub use resources::Physical;
