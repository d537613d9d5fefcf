//! Desired vs actual, object by object.
//!
//! Order of the changes, per switch (switches in name order): removals in
//! descending id order (dependents first: a port before its segment, a
//! segment before its VRF), then modifications, then additions in ascending
//! id order (dependencies first). Applying the changes in that order to
//! `actual` yields `desired`.

use crate::desired::{DesiredState, Object, ObjectId, SwitchConfig};
use crate::model::SwitchOs;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One change on one switch. It carries the switch's OS so it can be
/// rendered without looking the switch up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub switch: String,
    pub os: SwitchOs,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Add { object: Object },
    Remove { object: Object },
    Modify { from: Object, to: Object },
}

impl Change {
    pub fn id(&self) -> ObjectId {
        match &self.op {
            Op::Add { object } | Op::Remove { object } => object.id(),
            Op::Modify { to, .. } => to.id(),
        }
    }
}

/// Every change that turns `actual` into `desired`. A switch missing from
/// `actual` is treated as empty; one missing from `desired` loses all its
/// objects. Unchanged switches cost one equality check.
pub fn diff(desired: &DesiredState, actual: &DesiredState) -> Vec<Change> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = desired.switches.keys().chain(actual.switches.keys()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let (d, a) = (desired.switches.get(name), actual.switches.get(name));
        if d == a {
            continue;
        }
        out.extend(diff_switch(name, d, a));
    }
    out
}

/// The changes on one switch (see `diff`).
pub fn diff_switch(
    name: &str,
    desired: Option<&SwitchConfig>,
    actual: Option<&SwitchConfig>,
) -> Vec<Change> {
    let empty = BTreeMap::new();
    let d = desired.map_or(&empty, |c| &c.objects);
    let a = actual.map_or(&empty, |c| &c.objects);
    let os_d = desired.map(|c| c.os);
    let os_a = actual.map(|c| c.os);
    let Some(os) = os_d.or(os_a) else { return Vec::new() };
    let change = |op| Change { switch: name.to_string(), os, op };
    let (mut removes, mut modifies, mut adds) = (Vec::new(), Vec::new(), Vec::new());
    // A merge walk over the two sorted maps: O(objects on the switch).
    let (mut di, mut ai) = (d.iter().peekable(), a.iter().peekable());
    loop {
        let step = match (di.peek(), ai.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((dk, _)), Some((ak, _))) => dk.cmp(ak),
        };
        match step {
            Ordering::Less => {
                if let Some((_, o)) = di.next() {
                    adds.push(change(Op::Add { object: o.clone() }));
                }
            }
            Ordering::Greater => {
                if let Some((_, o)) = ai.next() {
                    removes.push(change(Op::Remove { object: o.clone() }));
                }
            }
            Ordering::Equal => {
                if let (Some((_, dobj)), Some((_, aobj))) = (di.next(), ai.next()) {
                    if dobj != aobj {
                        modifies.push(change(Op::Modify { from: aobj.clone(), to: dobj.clone() }));
                    }
                }
            }
        }
    }
    removes.reverse();
    removes.into_iter().chain(modifies).chain(adds).collect()
}

/// Applies changes to a state: the model-level meaning of a diff. A switch
/// left without objects is dropped (planned switches always have some).
pub fn apply(state: &mut DesiredState, changes: &[Change]) {
    for c in changes {
        let sw = state.switches.entry(c.switch.clone()).or_insert_with(|| SwitchConfig::new(c.os));
        sw.os = c.os;
        match &c.op {
            Op::Add { object } | Op::Modify { to: object, .. } => {
                sw.objects.insert(object.id(), object.clone());
            }
            Op::Remove { object } => {
                sw.objects.remove(&object.id());
            }
        }
    }
    state.switches.retain(|_, sw| !sw.objects.is_empty());
}
