//! A VFIO group: the unit of IOMMU isolation, attached to a container,
//! from which device fds are obtained.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};

use super::container::Container;
use super::error::VfioError;
use super::ioctl::{self, argsz, GroupStatus};

/// An open `/dev/vfio/<group>`.
#[derive(Debug)]
pub struct Group {
    file: File,
    id: u32,
}

impl Group {
    /// Opens group `id` and checks it is viable.
    pub fn open(id: u32) -> Result<Group, VfioError> {
        let p = format!("/dev/vfio/{id}");
        if !std::path::Path::new(&p).exists() {
            if !std::path::Path::new("/dev/vfio/vfio").exists() {
                return Err(VfioError::NoVfio);
            }
            return Err(VfioError::NoGroupNode(p));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(|e| VfioError::os(format!("open {p}"), e))?;
        let g = Group { file, id };
        if g.status()? & ioctl::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(VfioError::GroupNotViable(id));
        }
        Ok(g)
    }

    /// The group number.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `VFIO_GROUP_GET_STATUS` flags.
    pub fn status(&self) -> Result<u32, VfioError> {
        let mut s = GroupStatus {
            argsz: argsz::<GroupStatus>(),
            flags: 0,
        };
        // SAFETY: `s` is a valid vfio_group_status.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_GROUP_GET_STATUS, &mut s) }
            .map_err(|e| VfioError::os("VFIO_GROUP_GET_STATUS", e))?;
        Ok(s.flags)
    }

    /// Attaches the group to `c` and selects the container's IOMMU model.
    pub fn attach(&self, c: &mut Container) -> Result<(), VfioError> {
        let mut fd = c.file().as_raw_fd();
        // SAFETY: the argument is a pointer to an int holding the container fd.
        unsafe { ioctl::ioctl_ptr(self.file.as_fd(), ioctl::VFIO_GROUP_SET_CONTAINER, &mut fd) }
            .map_err(|e| VfioError::os("VFIO_GROUP_SET_CONTAINER", e))?;
        c.set_iommu()
    }

    /// Gets the fd of device `name` (its PCI address) in this group.
    pub fn device_fd(&self, name: &str) -> Result<File, VfioError> {
        let c = CString::new(name).map_err(|_| VfioError::BadAddress(name.to_string()))?;
        // SAFETY: the argument is a NUL-terminated string that outlives the call.
        let fd = unsafe {
            ioctl::ioctl_ptr(
                self.file.as_fd(),
                ioctl::VFIO_GROUP_GET_DEVICE_FD,
                c.as_ptr() as *mut libc::c_char,
            )
        }
        .map_err(|e| VfioError::os(format!("VFIO_GROUP_GET_DEVICE_FD {name}"), e))?;
        // SAFETY: on success the ioctl returns a new fd that we now own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}
