//! The UFM REST call plan: from what UFM has (as read back with
//! `GET /ufmRest/resources/pkeys?guids_data=true`) to what it should have.
//!
//! Calls are coalesced: per PKey at most one create, one add (all new GUIDs
//! at once, full members), one remove (all leaving GUIDs in one path), one
//! delete. Every removal and delete comes before any create or add, so a
//! node leaving tenant A for tenant B is never in both partitions at once.

use super::{IbDesired, IbFabric, IbPartitionState, DEFAULT_PKEY};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The HTTP methods the plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UfmMethod {
    Post,
    Delete,
}

impl UfmMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UfmMethod::Post => "POST",
            UfmMethod::Delete => "DELETE",
        }
    }
}

/// One REST call, relative to the UFM base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct UfmCall {
    pub method: UfmMethod,
    pub path: String,
    pub body: Option<Value>,
}

/// A PKey as UFM wants it: a hex string such as `0x12`.
pub fn pkey_hex(pkey: u16) -> String {
    format!("0x{pkey:x}")
}

/// The calls that take UFM from `actual` to `desired` for the PKeys this
/// control plane manages: those in the fabric's range. PKeys outside it
/// (the SM's Default 0x7fff, other tools' partitions) are never touched,
/// whatever `actual` holds. Names of existing PKeys are not reconciled (no
/// rename call is known).
pub fn ufm_changes(fabric: &IbFabric, desired: &IbDesired, actual: &IbDesired) -> Vec<UfmCall> {
    let mut removals = Vec::new();
    let mut additions = Vec::new();
    let empty = IbPartitionState::default();
    let ours = |pkey: u16| {
        pkey != DEFAULT_PKEY && (fabric.pkey_range.first..=fabric.pkey_range.last).contains(&pkey)
    };
    for (&pkey, have) in &actual.partitions {
        if !ours(pkey) {
            continue;
        }
        match desired.partitions.get(&pkey) {
            None => removals.push(UfmCall {
                method: UfmMethod::Delete,
                path: format!("/ufmRest/resources/pkeys/{}", pkey_hex(pkey)),
                body: None,
            }),
            Some(want) => {
                let gone: Vec<&str> =
                    have.members.difference(&want.members).map(String::as_str).collect();
                if !gone.is_empty() {
                    removals.push(UfmCall {
                        method: UfmMethod::Delete,
                        path: format!(
                            "/ufmRest/resources/pkeys/{}/guids/{}",
                            pkey_hex(pkey),
                            gone.join(",")
                        ),
                        body: None,
                    });
                }
            }
        }
    }
    for (&pkey, want) in &desired.partitions {
        if !ours(pkey) {
            continue;
        }
        let have = match actual.partitions.get(&pkey) {
            Some(h) => h,
            None => {
                additions.push(UfmCall {
                    method: UfmMethod::Post,
                    path: "/ufmRest/resources/pkeys/add".into(),
                    body: Some(json!({
                        "pkey": pkey_hex(pkey),
                        "partition_name": want.name,
                        "index0": false,
                        "ip_over_ib": true,
                    })),
                });
                &empty
            }
        };
        let new: BTreeSet<&String> = want.members.difference(&have.members).collect();
        if !new.is_empty() {
            additions.push(UfmCall {
                method: UfmMethod::Post,
                path: "/ufmRest/resources/pkeys/".into(),
                body: Some(json!({
                    "pkey": pkey_hex(pkey),
                    "guids": new,
                    "index0": false,
                    "ip_over_ib": true,
                    "membership": "full",
                })),
            });
        }
    }
    removals.extend(additions);
    removals
}
