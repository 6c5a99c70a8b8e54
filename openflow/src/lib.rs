//! OpenFlow 1.3 wire format (work in progress).
