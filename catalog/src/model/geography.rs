//! Provinces, cities and departments: who owns what in the catalog.

use serde::{Deserialize, Serialize};

/// A province (e.g. `33` Zhejiang); channel numbers start with its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Province {
    /// Two-digit code.
    pub code: String,
    /// Display name.
    pub name: String,
}

/// A city within a province (e.g. `3301` Hangzhou).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct City {
    /// Four-digit code whose first two digits are the province.
    pub code: String,
    /// Display name.
    pub name: String,
}

impl City {
    /// The province code this city belongs to.
    pub fn province(&self) -> &str {
        self.code.get(..2).unwrap_or("")
    }
}

/// A city department that owns applications (e.g. the parks bureau).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Slug id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// City code.
    pub city: String,
}
