//! OpenFlow 1.3 switch side over the `switch` crate (work in progress).
