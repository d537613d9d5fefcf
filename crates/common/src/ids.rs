//! Identifiers and names.
//!
//! Every object has a stable id (a UUID, never reused) and, where people
//! refer to it, a name unique in its scope. Paths accept either.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::Error;

/// A fresh random (v4) object id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A name: 1-63 characters, lowercase ASCII letters, digits and '-',
/// starting with a letter and not ending with '-'. Like a DNS label, so it
/// can be used in hostnames, VRF names and file names without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
#[schemars(
    description = "1-63 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
)]
pub struct Name(#[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"))] String);

impl Name {
    pub fn parse(s: &str) -> Result<Name, String> {
        if s.is_empty() || s.len() > 63 {
            return Err("must be 1 to 63 characters".into());
        }
        let b = s.as_bytes();
        if !b[0].is_ascii_lowercase() {
            return Err("must start with a lowercase letter".into());
        }
        if b[b.len() - 1] == b'-' {
            return Err("must not end with '-'".into());
        }
        if let Some(c) =
            s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "must contain only lowercase letters, digits and '-', found {c:?}"
            ));
        }
        Ok(Name(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(|e| serde::de::Error::custom(format!("invalid name {s:?}: {e}")))
    }
}

/// A path parameter: an object's id or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrId {
    Id(String),
    Name(Name),
}

impl NameOrId {
    /// Parses a path parameter; `param` names it in the error.
    pub fn parse(param: &str, s: &str) -> Result<NameOrId, Error> {
        if let Ok(u) = uuid::Uuid::parse_str(s) {
            return Ok(NameOrId::Id(u.to_string()));
        }
        Name::parse(s).map(NameOrId::Name).map_err(|e| {
            Error::invalid_request(param, format!("{param} must be an id or a name: {e}"))
        })
    }
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrId::Id(id) => f.write_str(id),
            NameOrId::Name(n) => f.write_str(n.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "acme", "team-1", "a1b2", &"x".repeat(63)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "-a", "a-", "Acme", "a_b", "a.b", "ä", &"x".repeat(64)] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_or_id() {
        let id = new_id();
        assert_eq!(NameOrId::parse("tenant", &id).unwrap(), NameOrId::Id(id.clone()));
        assert!(matches!(NameOrId::parse("tenant", "acme").unwrap(), NameOrId::Name(_)));
        let e = NameOrId::parse("tenant", "Bad Name").unwrap_err();
        assert_eq!(e.field(), Some("tenant"));
    }

    #[test]
    fn name_deserialization_rejects_bad_names() {
        assert!(serde_json::from_str::<Name>("\"ok-name\"").is_ok());
        assert!(serde_json::from_str::<Name>("\"Not OK\"").is_err());
    }
}
