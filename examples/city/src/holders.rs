//! The city's test holders: `examples/city/holders.json` names each holder, their resident ID
//! number (generated, nobody's) and their holder data — what the province's holder-data service
//! would answer (age, concession category, the card's financial account, vital status, household
//! role). The gateway's test double of that service ([`onecard_gateway::holders::FileHolders`])
//! is keyed by the catalog's card reference, an HMAC of the ID number under the catalog's own
//! key; so the city writes the gateway's file, keyed by card reference, into its data folder.

use std::collections::BTreeMap;
use std::path::Path;

use onecard_catalog::Store;
use serde::Deserialize;

use crate::CityError;

/// `examples/city/holders.json`.
pub const HOLDERS_JSON: &str = include_str!("../holders.json");

/// One holder of `holders.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Resident ID number (18 characters, GB 11643).
    pub ssn: String,
    /// Holder data by scope (`holder.age` …).
    pub attributes: BTreeMap<String, String>,
}

/// A holder as the running city knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoHolder {
    /// The catalog's card reference (what a card token carries).
    pub card_ref: String,
    /// Holder data by scope.
    pub attributes: BTreeMap<String, String>,
}

/// The holders of `text` (the form of `holders.json`), by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, Holder>, CityError> {
    serde_json::from_str(text).map_err(|e| CityError::Holders(e.to_string()))
}

/// Resolves the holders' card references in `store` and writes the gateway's holder file to
/// `path` (`{card_ref: {scope: value}}`).
pub async fn write_gateway_file(store: &Store, holders: &BTreeMap<String, Holder>, path: &Path) -> Result<BTreeMap<String, DemoHolder>, CityError> {
    let mut known = BTreeMap::new();
    let mut file = serde_json::Map::new();
    for (name, holder) in holders {
        let card_ref = store.card_ref(&holder.ssn).await.map_err(|e| CityError::Holders(format!("{name}: {e}")))?;
        file.insert(card_ref.clone(), serde_json::to_value(&holder.attributes).unwrap_or_default());
        known.insert(name.clone(), DemoHolder { card_ref, attributes: holder.attributes.clone() });
    }
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    std::fs::write(path, text).map_err(|e| CityError::file(path, e))?;
    Ok(known)
}

/// The card references by holder name, as `cards.json` in the data folder keeps them for
/// `onecard-city calls`.
pub fn card_refs(holders: &BTreeMap<String, DemoHolder>) -> BTreeMap<String, String> {
    holders.iter().map(|(n, h)| (n.clone(), h.card_ref.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_holders_parse_and_unknown_fields_are_refused() {
        let holders = parse(HOLDERS_JSON).expect("holders.json");
        assert_eq!(holders.len(), 4);
        assert_eq!(holders["chen"].attributes["holder.vital_status"], "deceased");
        assert_eq!(holders["zhang"].attributes["holder.household_role"], "head");
        let err = parse(r#"{"x": {"ssn": "1", "attributes": {}, "colour": "red"}}"#).unwrap_err();
        assert_eq!(err.code(), "CITY_HOLDERS_INVALID");
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
