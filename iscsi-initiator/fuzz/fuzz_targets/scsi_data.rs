//! SCSI response-data parsers (sense, INQUIRY, VPD pages, capacity, REPORT LUNS) and
//! the negotiation of arbitrary target keys.
#![no_main]

use iscsi_initiator::negotiate::{Negotiator, Proposal};
use iscsi_initiator::scsi::{capacity::Capacity, inquiry, report_luns, sense::Sense};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Sense::parse(data);
    let _ = inquiry::StandardInquiry::parse(data);
    let _ = inquiry::supported_pages(data);
    let _ = inquiry::unit_serial(data);
    let _ = inquiry::device_id(data);
    let _ = inquiry::BlockLimits::parse(data);
    let _ = inquiry::Provisioning::parse(data);
    let _ = Capacity::parse10(data);
    let _ = Capacity::parse16(data);
    let _ = report_luns::parse(data);
    let mut n = Negotiator::new(&Proposal::default());
    for pair in iscsi_pdu::text::pairs(data).flatten() {
        let _ = n.on_target_key(pair.0, pair.1);
    }
    let _ = n.finish();
});
