//! Holder data: the attributes (`holder.age`, `holder.category`, `holder.name` …) a plugin may
//! read with the holder's consent. The catalog never stores personal data; it comes from the
//! province's population and social-security systems, outside onecard. [`HolderDirectory`] is
//! that boundary; [`FileHolders`] is a test double reading a JSON file (the example city and
//! tests), named as such.
//!
//! Data minimisation happens here: [`consented_view`] keeps only the consented scopes and masks
//! identifiers ([`mask`]) before anything reaches a plugin.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

/// Where holder attributes come from.
pub trait HolderDirectory: Send + Sync + fmt::Debug {
    /// The attributes of the holder of `card_ref` (scope name → value), empty if unknown.
    fn attributes(&self, card_ref: &str) -> BTreeMap<String, String>;
}

/// Test double of the province's holder-data service: a JSON object `{card_ref: {scope: value}}`.
#[derive(Debug, Clone, Default)]
pub struct FileHolders {
    holders: HashMap<String, BTreeMap<String, String>>,
}

impl FileHolders {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let holders = serde_json::from_str(&text).map_err(|e| format!("{} is not holder data: {e}", path.display()))?;
        Ok(FileHolders { holders })
    }

    /// From a map (tests).
    pub fn from_map(holders: HashMap<String, BTreeMap<String, String>>) -> Self {
        FileHolders { holders }
    }
}

impl HolderDirectory for FileHolders {
    fn attributes(&self, card_ref: &str) -> BTreeMap<String, String> {
        self.holders.get(card_ref).cloned().unwrap_or_default()
    }
}

/// Scopes whose values identify a person and are masked before a plugin sees them.
pub const IDENTIFIER_SCOPES: [&str; 4] = ["holder.name", "holder.id_number", "holder.phone", "holder.card_number"];

/// Masks an identifier: a name keeps its first character; numbers keep a short head and tail.
pub fn mask(scope: &str, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let keep = |head: usize, tail: usize| -> String {
        if chars.len() <= head + tail {
            return "*".repeat(chars.len());
        }
        let stars = "*".repeat(chars.len() - head - tail);
        format!("{}{stars}{}", chars[..head].iter().collect::<String>(), chars[chars.len() - tail..].iter().collect::<String>())
    };
    match scope {
        "holder.name" => keep(1, 0),
        "holder.id_number" => keep(6, 4),
        "holder.phone" => keep(3, 4),
        _ => keep(1, 4),
    }
}

/// The attributes a plugin may see: only `scopes`, identifiers masked.
pub fn consented_view(all: &BTreeMap<String, String>, scopes: &BTreeSet<String>) -> Vec<(String, String)> {
    all.iter()
        .filter(|(k, _)| scopes.contains(*k))
        .map(|(k, v)| {
            let v = if IDENTIFIER_SCOPES.contains(&k.as_str()) { mask(k, v) } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_and_unconsented_scopes_dropped() {
        let all: BTreeMap<String, String> = [
            ("holder.age", "67"),
            ("holder.name", "张三丰"),
            ("holder.id_number", "11010519491231002X"),
            ("holder.phone", "13800138000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let scopes: BTreeSet<String> = ["holder.age", "holder.name", "holder.id_number"].into_iter().map(String::from).collect();
        let view = consented_view(&all, &scopes);
        assert_eq!(
            view,
            vec![
                ("holder.age".into(), "67".into()),
                ("holder.id_number".into(), "110105********002X".into()),
                ("holder.name".into(), "张**".into()),
            ]
        );
        assert_eq!(mask("holder.phone", "13800138000"), "138****8000");
        assert_eq!(mask("holder.id_number", "123"), "***");
    }
}
