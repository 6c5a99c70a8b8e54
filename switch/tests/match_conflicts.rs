//! A match that names a field twice keeps both when their bits agree and
//! refuses the rule, naming the field, when they disagree (for packet
//! fields and for the conntrack fields alike).

use switch::rule::parse_match;

fn refused(s: &str) -> String {
    match parse_match(s) {
        Ok((m, _)) => panic!("`{s}` was accepted as {m:?}"),
        Err(e) => e,
    }
}

#[test]
fn disagreeing_repeats_are_refused_with_the_field_named() {
    let e = refused("ip,nw_src=10.0.0.1,nw_src=10.0.0.2");
    assert!(e.contains("`nw_src` conflicts"), "{e}");
    let e = refused("ip,nw_src=10.0.0.0/8,nw_src=11.1.2.3");
    assert!(e.contains("`nw_src` conflicts"), "{e}");
    let e = refused("ct_state=+trk,ct_state=-trk");
    assert!(e.contains("`ct_state` conflicts"), "{e}");
}

#[test]
fn agreeing_repeats_merge_their_bits() {
    let m = |s: &str| parse_match(s).unwrap().0;
    assert_eq!(
        m("ip,nw_src=10.0.0.0/8,nw_src=10.1.2.3"),
        m("ip,nw_src=10.1.2.3")
    );
    assert_eq!(
        m("ip,nw_src=10.1.2.3,nw_src=10.0.0.0/8"),
        m("ip,nw_src=10.1.2.3")
    );
    assert_eq!(m("ct_state=+trk,ct_state=+new"), m("ct_state=+trk+new"));
}
