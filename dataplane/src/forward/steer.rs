//! Which target a flow goes to, as its service's `Tracking` says: Maglev first with
//! the flow table only on marked slots (`Changes`, see `steering`), the flow table for
//! every frame (`Full`), or Maglev alone (`None`).

use super::Context;
use crate::flow::{Endpoint, FlowEntry, FlowKey, FlowState, FlowTarget};
use crate::snapshot::{Service, Snapshot, Tracking};
use crate::steering::Steer;
use crate::wire::MacAddr;

/// A frame's flow: its key, hash and what the frame says of its state.
pub(super) struct Flow<E = u64> {
    pub key: FlowKey<E>,
    pub hash: u64,
    pub state: FlowState,
}

/// Where a frame goes.
pub(super) struct Forwarded {
    pub slot: u16,
    pub mac: MacAddr,
    /// Deciding another frame of the flow in the same state, under the same
    /// snapshot in the same millisecond, would go the same way and change nothing in
    /// the flow table (see `SameFlowRun`): false when a flow the table was asked to
    /// record was left out (the new-flow guard, a bucket of active flows).
    pub repeatable: bool,
}

/// The flow's target, recording in the flow table what its tracking records. None:
/// no target may take the flow.
#[inline(always)]
pub(super) fn steer<E: Endpoint>(
    ctx: &mut Context,
    service: &Service,
    flow: &Flow<E>,
) -> Option<Forwarded> {
    match service.tracking {
        Tracking::Changes => match service.steering.steer(flow.hash)? {
            Steer::Unchanged(current) => unchanged(ctx, flow, current?),
            Steer::Changed { current, previous } => changed(ctx, service, flow, current, previous),
        },
        Tracking::Full => by_table(ctx, service, flow),
        Tracking::None => {
            let (target, mac) = maglev(ctx.snapshot, service, flow.hash)?;
            Some(Forwarded {
                slot: target.slot,
                mac,
                repeatable: true,
            })
        }
    }
}

/// Whether `steer` may ask the flow table for a frame of `service` (for the
/// lookahead's prefetch): with `Full` always, with `None` never, with `Changes` for a
/// bare SYN (`is_bare_syn`, asked only then) or while the service has marked slots.
#[inline(always)]
pub(super) fn may_ask_table(service: &Service, is_bare_syn: impl FnOnce() -> bool) -> bool {
    match service.tracking {
        Tracking::Full => true,
        Tracking::None => false,
        Tracking::Changes => service.steering.marked() > 0 || is_bare_syn(),
    }
}

/// The target that owns a flow, as its next frame would find it, recording nothing:
/// where an ICMP error about the flow goes.
pub(super) fn owner<E: Endpoint>(
    ctx: &mut Context,
    service: &Service,
    key: &FlowKey<E>,
    hash: u64,
) -> Option<(u16, MacAddr)> {
    let pinned = |ctx: &mut Context| {
        let pinned = ctx.flows.get(key, hash, ctx.now_ms)?.target();
        let mac = ctx.snapshot.usable_target(pinned)?.mac;
        Some((pinned.slot, mac))
    };
    let slot_and_mac = |(target, mac): (FlowTarget, MacAddr)| (target.slot, mac);
    match service.tracking {
        Tracking::Changes => match service.steering.steer(hash)? {
            Steer::Unchanged(current) => current_target(ctx, current).map(slot_and_mac),
            Steer::Changed { current, previous } => pinned(ctx)
                .or_else(|| usable(ctx, previous).map(|mac| (previous.slot, mac)))
                .or_else(|| current_target(ctx, current).map(slot_and_mac)),
        },
        Tracking::Full => {
            pinned(ctx).or_else(|| maglev(ctx.snapshot, service, hash).map(slot_and_mac))
        }
        Tracking::None => maglev(ctx.snapshot, service, hash).map(slot_and_mac),
    }
}

/// An unmarked slot: its target. A bare SYN is recorded, so that the flow keeps the
/// target if a later change marks the slot.
#[inline(always)]
fn unchanged<E: Endpoint>(ctx: &mut Context, flow: &Flow<E>, slot: u16) -> Option<Forwarded> {
    let (target, mac) = current_target(ctx, Some(slot))?;
    let repeatable = flow.state != FlowState::TcpSynOnly || record(ctx, flow, target);
    Some(Forwarded {
        slot,
        mac,
        repeatable,
    })
}

/// Records a bare SYN's flow on `target` (a retransmitted SYN finds it recorded):
/// whether the table holds it.
#[cold]
fn record<E: Endpoint>(ctx: &mut Context, flow: &Flow<E>, target: FlowTarget) -> bool {
    if let Some(mut entry) = ctx.flows.get(&flow.key, flow.hash, ctx.now_ms) {
        entry.set_target(target);
        entry.touch(ctx.now_ms, flow.state);
        return true;
    }
    (ctx.flows)
        .insert(&flow.key, flow.hash, target, flow.state, ctx.now_ms)
        .remembered()
}

/// A marked slot: the flow table decides. A flow it holds keeps its target while
/// usable. A flow it does not hold began before the change (a flow begun since was
/// recorded at its SYN), so it goes to the slot's previous target while usable and
/// is recorded there. A bare SYN begins a flow: the current target if the table can
/// record it; if not, its later frames, not found, will go to the previous target,
/// and so does it: never a flow split between two targets.
#[inline(never)]
fn changed<E: Endpoint>(
    ctx: &mut Context,
    service: &Service,
    flow: &Flow<E>,
    current: Option<u16>,
    previous: FlowTarget,
) -> Option<Forwarded> {
    let current = current_target(ctx, current);
    let (target, mac, repeatable) = match ctx.flows.get(&flow.key, flow.hash, ctx.now_ms) {
        Some(entry) => {
            let (target, mac) = keep_or_repin(entry, ctx.snapshot, ctx.now_ms, flow, || current)?;
            (target, mac, true)
        }
        None => {
            let before = usable(ctx, previous).map(|mac| (previous, mac));
            let first = if flow.state == FlowState::TcpSynOnly {
                current.or(before)
            } else {
                before.or(current)
            };
            let (target, mac) = first?;
            let remembered = (ctx.flows)
                .insert(&flow.key, flow.hash, target, flow.state, ctx.now_ms)
                .remembered();
            match (remembered, before) {
                (false, Some((target, mac))) => (target, mac, false),
                _ => (target, mac, remembered),
            }
        }
    };
    if Some(target) != current.map(|(c, _)| c) {
        ctx.flows.count_kept(service.slot);
    }
    Some(Forwarded {
        slot: target.slot,
        mac,
        repeatable,
    })
}

/// Every frame through the flow table: a pinned target while usable, else Maglev's
/// choice, recorded.
#[inline(always)]
fn by_table<E: Endpoint>(
    ctx: &mut Context,
    service: &Service,
    flow: &Flow<E>,
) -> Option<Forwarded> {
    let snapshot = ctx.snapshot;
    let (target, mac, repeatable) = match ctx.flows.get(&flow.key, flow.hash, ctx.now_ms) {
        Some(entry) => {
            let fresh = || maglev(snapshot, service, flow.hash);
            let (target, mac) = keep_or_repin(entry, snapshot, ctx.now_ms, flow, fresh)?;
            (target, mac, true)
        }
        None => {
            let (fresh, mac) = maglev(snapshot, service, flow.hash)?;
            let remembered = (ctx.flows)
                .insert(&flow.key, flow.hash, fresh, flow.state, ctx.now_ms)
                .remembered();
            (fresh, mac, remembered)
        }
    };
    Some(Forwarded {
        slot: target.slot,
        mac,
        repeatable,
    })
}

/// A flow the table holds: its pinned target while usable, else `fresh`'s (asked
/// only then), pinned in its place; the entry is touched with the frame's state.
/// None, and the entry left as it was, if neither may take the flow.
#[inline(always)]
fn keep_or_repin<E: Endpoint>(
    mut entry: FlowEntry<E>,
    snapshot: &Snapshot,
    now_ms: u64,
    flow: &Flow<E>,
    fresh: impl FnOnce() -> Option<(FlowTarget, MacAddr)>,
) -> Option<(FlowTarget, MacAddr)> {
    let pinned = entry.target();
    let (target, mac) = match snapshot.usable_target(pinned) {
        Some(t) => (pinned, t.mac),
        None => {
            let (fresh, mac) = fresh()?;
            entry.set_target(fresh);
            (fresh, mac)
        }
    };
    entry.touch(now_ms, flow.state);
    Some((target, mac))
}

/// Maglev's choice for a new flow, if usable.
#[inline(always)]
fn maglev(snapshot: &Snapshot, service: &Service, hash: u64) -> Option<(FlowTarget, MacAddr)> {
    let fresh = service.pick(hash, snapshot.targets())?;
    Some((fresh, snapshot.usable_target(fresh)?.mac))
}

/// A steering slot's current target (usable by construction: the table holds no
/// other), as a flow would be pinned to it.
#[inline(always)]
fn current_target(ctx: &Context, slot: Option<u16>) -> Option<(FlowTarget, MacAddr)> {
    let slot = slot?;
    let target = ctx.snapshot.target(slot).filter(|t| t.usable)?;
    Some((
        FlowTarget {
            slot,
            generation: target.generation,
        },
        target.mac,
    ))
}

fn usable(ctx: &Context, target: FlowTarget) -> Option<MacAddr> {
    ctx.snapshot.usable_target(target).map(|t| t.mac)
}
