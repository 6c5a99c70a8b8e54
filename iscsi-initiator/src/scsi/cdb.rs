//! Command Descriptor Block builders (SPC-4, SBC-3). All CDBs here fit the 16 bytes of
//! the SCSI Command BHS, so no Extended CDB AHS is needed.

/// A CDB of up to 16 bytes, zero padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cdb {
    /// The bytes, zero padded to 16.
    pub bytes: [u8; 16],
    /// The CDB's length (6, 10, 12 or 16).
    pub len: u8,
}

/// Operation codes.
pub mod opcode {
    /// TEST UNIT READY (SPC-4 6.47).
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// INQUIRY (SPC-4 6.6).
    pub const INQUIRY: u8 = 0x12;
    /// READ CAPACITY (10) (SBC-3 5.15).
    pub const READ_CAPACITY_10: u8 = 0x25;
    /// READ (10) (SBC-3 5.8).
    pub const READ_10: u8 = 0x28;
    /// WRITE (10) (SBC-3 5.32).
    pub const WRITE_10: u8 = 0x2a;
    /// SYNCHRONIZE CACHE (10) (SBC-3 5.22).
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    /// UNMAP (SBC-3 5.28).
    pub const UNMAP: u8 = 0x42;
    /// READ (16) (SBC-3 5.11).
    pub const READ_16: u8 = 0x88;
    /// WRITE (16) (SBC-3 5.34).
    pub const WRITE_16: u8 = 0x8a;
    /// SYNCHRONIZE CACHE (16) (SBC-3 5.23).
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    /// WRITE SAME (16) (SBC-3 5.42).
    pub const WRITE_SAME_16: u8 = 0x93;
    /// SERVICE ACTION IN (16): READ CAPACITY (16) and others by service action.
    pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
    /// REPORT LUNS (SPC-4 6.33).
    pub const REPORT_LUNS: u8 = 0xa0;
    /// The service action of READ CAPACITY (16) under `SERVICE_ACTION_IN_16` (SBC-3 5.16).
    pub const READ_CAPACITY_16_SA: u8 = 0x10;
}

fn cdb(len: u8, f: impl FnOnce(&mut [u8; 16])) -> Cdb {
    let mut bytes = [0u8; 16];
    f(&mut bytes);
    Cdb { bytes, len }
}

/// TEST UNIT READY (SPC-4 6.47).
pub fn test_unit_ready() -> Cdb {
    cdb(6, |_| {})
}

/// INQUIRY (SPC-4 6.6): standard data when `page` is None, else the VPD page.
pub fn inquiry(page: Option<u8>, alloc_len: u16) -> Cdb {
    cdb(6, |b| {
        b[0] = opcode::INQUIRY;
        if let Some(p) = page {
            b[1] = 1; // EVPD
            b[2] = p;
        }
        b[3..5].copy_from_slice(&alloc_len.to_be_bytes());
    })
}

/// READ CAPACITY (10) (SBC-3 5.15).
pub fn read_capacity10() -> Cdb {
    cdb(10, |b| b[0] = opcode::READ_CAPACITY_10)
}

/// READ CAPACITY (16) (SBC-3 5.16).
pub fn read_capacity16(alloc_len: u32) -> Cdb {
    cdb(16, |b| {
        b[0] = opcode::SERVICE_ACTION_IN_16;
        b[1] = opcode::READ_CAPACITY_16_SA;
        b[10..14].copy_from_slice(&alloc_len.to_be_bytes());
    })
}

/// REPORT LUNS (SPC-4 6.33), select report 0.
pub fn report_luns(alloc_len: u32) -> Cdb {
    cdb(12, |b| {
        b[0] = opcode::REPORT_LUNS;
        b[6..10].copy_from_slice(&alloc_len.to_be_bytes());
    })
}

fn rw(op10: u8, op16: u8, lba: u64, blocks: u32, fua: bool) -> Cdb {
    let fua = if fua { 0x08 } else { 0 };
    if lba <= u32::MAX as u64 && blocks <= u16::MAX as u32 {
        cdb(10, |b| {
            b[0] = op10;
            b[1] = fua;
            b[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            b[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
        })
    } else {
        cdb(16, |b| {
            b[0] = op16;
            b[1] = fua;
            b[2..10].copy_from_slice(&lba.to_be_bytes());
            b[10..14].copy_from_slice(&blocks.to_be_bytes());
        })
    }
}

/// READ (10) when LBA and length fit, else READ (16) (SBC-3 5.11, 5.13).
pub fn read(lba: u64, blocks: u32) -> Cdb {
    rw(opcode::READ_10, opcode::READ_16, lba, blocks, false)
}

/// WRITE (10) when LBA and length fit, else WRITE (16); `fua` sets Force Unit Access.
pub fn write(lba: u64, blocks: u32, fua: bool) -> Cdb {
    rw(opcode::WRITE_10, opcode::WRITE_16, lba, blocks, fua)
}

/// SYNCHRONIZE CACHE (10) when the range fits, else (16); 0 blocks = to the end.
pub fn synchronize_cache(lba: u64, blocks: u32) -> Cdb {
    rw(
        opcode::SYNCHRONIZE_CACHE_10,
        opcode::SYNCHRONIZE_CACHE_16,
        lba,
        blocks,
        false,
    )
}

/// WRITE SAME (16) (SBC-3 5.42); with `unmap` the target may deallocate the blocks.
/// One block of data (zeroes for a discard) goes out with it.
pub fn write_same16(lba: u64, blocks: u32, unmap: bool) -> Cdb {
    cdb(16, |b| {
        b[0] = opcode::WRITE_SAME_16;
        b[1] = if unmap { 0x08 } else { 0 };
        b[2..10].copy_from_slice(&lba.to_be_bytes());
        b[10..14].copy_from_slice(&blocks.to_be_bytes());
    })
}

/// UNMAP (SBC-3 5.28) with a parameter list of `param_len` bytes (see [`unmap_params`]).
pub fn unmap(param_len: u16) -> Cdb {
    cdb(10, |b| {
        b[0] = opcode::UNMAP;
        b[7..9].copy_from_slice(&param_len.to_be_bytes());
    })
}

/// UNMAP parameter list (SBC-3 5.28.2) for the given (lba, blocks) ranges.
pub fn unmap_params(ranges: &[(u64, u32)]) -> Vec<u8> {
    let desc_len = 16 * ranges.len();
    let mut v = vec![0u8; 8 + desc_len];
    v[0..2].copy_from_slice(&((6 + desc_len) as u16).to_be_bytes());
    v[2..4].copy_from_slice(&(desc_len as u16).to_be_bytes());
    for (i, (lba, n)) in ranges.iter().enumerate() {
        let d = &mut v[8 + 16 * i..8 + 16 * (i + 1)];
        d[0..8].copy_from_slice(&lba.to_be_bytes());
        d[8..12].copy_from_slice(&n.to_be_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_read10_and_read16() {
        let c = read(0x0102_0304, 8);
        assert_eq!(c.len, 10);
        assert_eq!(&c.bytes[..10], &[0x28, 0, 1, 2, 3, 4, 0, 0, 8, 0]);
        let c = read(1 << 33, 8);
        assert_eq!(c.len, 16);
        assert_eq!(c.bytes[0], 0x88);
        assert_eq!(&c.bytes[2..10], &(1u64 << 33).to_be_bytes());
        let c = write(5, 70_000, false);
        assert_eq!((c.len, c.bytes[0]), (16, 0x8a));
    }

    #[test]
    fn construct_inquiry_vpd() {
        // As captured from libiscsi: 12 01 b0 00 40 00 would be VPD B0 with 64 bytes.
        let c = inquiry(Some(0xb0), 64);
        assert_eq!(&c.bytes[..6], &[0x12, 1, 0xb0, 0, 64, 0]);
        let c = inquiry(None, 64);
        assert_eq!(&c.bytes[..6], &[0x12, 0, 0, 0, 64, 0]);
    }

    #[test]
    fn construct_readcap16_like_libiscsi() {
        // Captured from iscsi-readcapacity16: 9e 10 00.. 00 00 00 20 00 00
        let c = read_capacity16(32);
        assert_eq!(
            c.bytes,
            [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0]
        );
    }

    #[test]
    fn construct_unmap_params() {
        let p = unmap_params(&[(8, 16)]);
        assert_eq!(p.len(), 24);
        assert_eq!(&p[..4], &[0, 22, 0, 16]);
        assert_eq!(&p[8..16], &8u64.to_be_bytes());
        assert_eq!(&p[16..20], &16u32.to_be_bytes());
    }
}
