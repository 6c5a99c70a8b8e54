//! PACKET_OUT: a controller's frame, with actions or through the tables.

use openflow::error_msg;

use crate::actions;
use crate::bridge::Bridge;
use crate::consts::NO_BUFFER;
use crate::error::OfError;

/// OpenFlow 1.3 §7.3.7: a frame from the controller, with actions (an
/// output to `OFPP_TABLE` runs it through the flow tables).
pub(crate) fn handle(br: &Bridge, po: openflow::packet_out::PacketOut) -> Result<(), OfError> {
    use openflow::action::port_no;
    if po.buffer_id != NO_BUFFER {
        return Err(OfError::request(
            error_msg::bad_request::BUFFER_UNKNOWN,
            "this switch buffers no packets",
        ));
    }
    let map = br.port_map();
    let in_port = match po.in_port {
        port_no::CONTROLLER | port_no::ANY => None,
        p => Some(map.to_switch(p).ok_or_else(|| {
            OfError::request(error_msg::bad_request::BAD_PORT, format!("in_port {p:#x}"))
        })?),
    };
    let table = matches!(
        po.actions.as_slice(),
        [openflow::Action::Output {
            port: port_no::TABLE,
            ..
        }]
    );
    let actions = if table {
        None
    } else {
        Some(actions::list_to_switch(&po.actions, &map)?)
    };
    send(br, in_port, actions, po.data)
}

/// What PACKET_OUT does once its message is read, in any version: refuse
/// actions that leave the frame's pass (group, resubmit) and an empty
/// frame, then send it (`actions: None`: through the flow tables).
pub(crate) fn send(
    br: &Bridge,
    in_port: Option<u16>,
    actions: Option<Vec<switch::action::Action>>,
    data: Vec<u8>,
) -> Result<(), OfError> {
    if actions.iter().flatten().any(|a| {
        matches!(
            a,
            switch::action::Action::Group(_) | switch::action::Action::Resubmit(_)
        )
    }) {
        return Err(OfError::action(
            error_msg::bad_action::BAD_TYPE,
            "group and resubmit are not supported in packet_out",
        ));
    }
    if data.is_empty() {
        return Err(OfError::request(
            error_msg::bad_request::BAD_PACKET,
            "packet_out without a frame",
        ));
    }
    br.packet_out(crate::bridge::PacketOut {
        in_port,
        actions,
        data,
    })
    .map_err(|why| OfError::request(error_msg::bad_request::EPERM, why))
}
