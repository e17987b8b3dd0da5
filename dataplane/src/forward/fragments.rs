//! Fragments of a datagram to a VIP, kept together (see `crate::fragment`): the first,
//! which carries the ports, is decided like any frame and records its target for the
//! datagram; later ones go where it went, or are held until it comes.

use super::general::forward_flow;
use super::steer::Flow;
use super::{rewrite_macs, Context, Verdict};
use crate::flow::{Endpoint, FlowTarget};
use crate::fragment::DatagramKey;
use crate::snapshot::Service;

/// A datagram's first fragment: forwarded like any frame of its flow, and where it
/// went recorded for the datagram's later fragments.
pub(super) fn first_fragment<E: Endpoint>(
    ctx: &mut Context,
    frame: &mut [u8],
    service: &Service,
    flow: &Flow<E>,
    datagram: &DatagramKey,
) -> Verdict {
    let verdict = forward_flow(ctx, frame, service, flow);
    if let Verdict::Forward { slot } = verdict {
        if let Some(target) = ctx.snapshot.target(slot) {
            let target = FlowTarget {
                slot,
                generation: target.generation,
            };
            (ctx.flows.fragments).record(datagram, target, service.slot, ctx.now_ms);
        }
    }
    verdict
}

/// A later fragment: to its first fragment's target while usable; held if its
/// first has not come.
pub(super) fn later_fragment(
    ctx: &mut Context,
    frame: &mut [u8],
    datagram: &DatagramKey,
) -> Verdict {
    let Some((target, service)) = ctx.flows.fragments.find(datagram, ctx.now_ms) else {
        return Verdict::Hold;
    };
    match ctx.snapshot.usable_target(target) {
        Some(to) => {
            rewrite_macs(frame, to.mac, ctx.port_mac);
            Verdict::Forward { slot: target.slot }
        }
        None => Verdict::Unserved { service },
    }
}
