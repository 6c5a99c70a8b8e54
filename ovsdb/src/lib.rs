//! OVSDB (RFC 7047) client and `Open_vSwitch` reconciler (work in progress).
