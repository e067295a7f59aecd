//! The admin token the city prints at start: a `province_admin` token of the catalog API
//! (`/catalog/v1/admin/...`), shown once. Tokens are stored hashed, so a lost one cannot be
//! shown again; each start revokes the city's previous token and creates a new one, so exactly
//! one city token is live at a time.

use onecard_catalog::Store;
use onecard_catalog::roles::Role;
use onecard_catalog::store::NewToken;

use crate::CityError;

/// The name the city's admin tokens carry.
pub const TOKEN_NAME: &str = "onecard-city";

/// Revokes the city's live admin tokens and creates a new one; returns its secret.
pub async fn fresh_admin_token(store: &Store) -> Result<String, CityError> {
    let old: Vec<String> = store.tokens().await?.into_iter().filter(|t| t.name == TOKEN_NAME && t.revoked_at.is_none()).map(|t| t.id).collect();
    let mut w = store.begin_write(TOKEN_NAME).await?;
    for id in &old {
        w.revoke_token(id).await?;
    }
    let (_, secret) = w.create_token(&NewToken { name: TOKEN_NAME.into(), role: Role::ProvinceAdmin, department: None, city: None, channel: None }).await?;
    w.commit().await?;
    Ok(secret)
}
