//! Bearer tokens: created by a province admin (the first by `onecard catalog init`), shown
//! once, stored only as their SHA-256.

use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use super::{Store, Writer};
use crate::error::{Error, Result, codes};
use crate::feed::{ChangeEvent, Op};
use crate::model::Timestamp;
use crate::roles::{Principal, Role};

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who holds it (recorded as the actor of their changes).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Department (department roles).
    #[serde(default)]
    pub department: Option<String>,
    /// City (city operators).
    #[serde(default)]
    pub city: Option<String>,
    /// Channel (channel tokens).
    #[serde(default)]
    pub channel: Option<String>,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Holder.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Department.
    pub department: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Created by.
    pub created_by: String,
    /// Revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_ts(s: &str) -> Result<Timestamp> {
    s.parse().map_err(|_| Error::Internal(format!("bad timestamp {s}")))
}

fn row_info(row: &sqlx::any::AnyRow) -> Result<TokenInfo> {
    let role: String = row.try_get("role")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| Error::Internal(format!("bad role {role}")))?,
        department: row.try_get("department")?,
        city: row.try_get("city")?,
        channel: row.try_get("channel")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        created_by: row.try_get("created_by")?,
        revoked_at: row.try_get::<Option<String>, _>("revoked_at")?.map(|s| parse_ts(&s)).transpose()?,
    })
}

const COLUMNS: &str = "id, name, role, department, city, channel, created_at, created_by, revoked_at";

impl Store {
    /// The principal behind a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tokens WHERE token_hash = $1")))
            .bind(hash(token))
            .fetch_optional(&self.pool)
            .await?;
        let info = match row {
            Some(row) => row_info(&row)?,
            None => return Err(Error::refused(crate::error::Refusal::Unauthorized, codes::TOKEN_INVALID, "the bearer token is not known")),
        };
        if info.revoked_at.is_some() {
            return Err(Error::refused(crate::error::Refusal::Unauthorized, codes::TOKEN_INVALID, "the bearer token was revoked"));
        }
        Ok(Principal { name: info.name, role: info.role, department: info.department, city: info.city, channel: info.channel })
    }

    /// Every token (never the secrets).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at, id"))).fetch_all(&self.pool).await?;
        rows.iter().map(row_info).collect()
    }
}

impl Writer {
    /// Whether any live province-admin token exists.
    pub async fn has_admin_token(&mut self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE role = 'province_admin' AND revoked_at IS NULL")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(n > 0)
    }

    /// Creates a token after checking its bindings against the catalog; returns it with the
    /// secret, which is not stored.
    pub async fn create_token(&mut self, t: &NewToken) -> Result<(TokenInfo, String)> {
        let c = self.catalog(false).await?;
        let bad = |m: String| Err(Error::bad_request(codes::INVALID_CATALOG, m));
        if t.name.trim().is_empty() {
            return bad("name is empty".into());
        }
        match t.role {
            r if r.needs_department() => match &t.department {
                Some(d) if c.department(d).is_some() => {}
                Some(d) => return bad(format!("department {d} does not exist")),
                None => return bad(format!("a {} token needs a department", r.as_str())),
            },
            Role::CityOperator => match &t.city {
                Some(x) if c.cities.iter().any(|city| &city.code == x) => {}
                Some(x) => return bad(format!("city {x} does not exist")),
                None => return bad("a city_operator token needs a city".into()),
            },
            Role::Channel => match &t.channel {
                Some(x) if c.channel(x).is_some() => {}
                Some(x) => return bad(format!("channel {x} does not exist")),
                None => return bad("a channel token needs a channel".into()),
            },
            _ => {}
        }
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        let id = hex::encode(id);
        let token = format!("oc_{}", hex::encode(secret));
        let keep = |x: &Option<String>, used: bool| if used { x.clone() } else { None };
        let info = TokenInfo {
            id: id.clone(),
            name: t.name.clone(),
            role: t.role,
            department: keep(&t.department, t.role.needs_department()),
            city: keep(&t.city, t.role == Role::CityOperator),
            channel: keep(&t.channel, t.role == Role::Channel),
            created_at: self.at(),
            created_by: self.actor().to_string(),
            revoked_at: None,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tokens (token_hash, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
        )))
        .bind(hash(&token))
        .bind(info.id.clone())
        .bind(info.name.clone())
        .bind(info.role.as_str())
        .bind(info.department.clone())
        .bind(info.city.clone())
        .bind(info.channel.clone())
        .bind(self.at_str())
        .bind(info.created_by.clone())
        .execute(&mut *self.tx)
        .await?;
        self.journal(&id, None, &ChangeEvent::TokenChanged { token_id: id.clone(), op: Op::Added }).await?;
        Ok((info, token))
    }

    /// Revokes a token.
    pub async fn revoke_token(&mut self, id: &str) -> Result<()> {
        let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(self.at_str())
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(codes::TOKEN_NOT_FOUND, format!("no live token {id}")));
        }
        self.journal(id, None, &ChangeEvent::TokenChanged { token_id: id.into(), op: Op::Removed }).await?;
        Ok(())
    }
}
