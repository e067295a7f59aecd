//! Step 2, admission: from the snapshot alone — the application exists and is online, the
//! action exists, the channel is active and holds a live grant (渠道授权) covering the action,
//! the venue (when named) is registered to the application and active, and its terminal is one
//! of the venue's, and the filed plugin is loaded.

use std::sync::Arc;

use onecard_catalog::model::{ActiveStatus, GrantStatus};
use onecard_catalog::workflow::FilingState;

use super::body::InvokeBody;
use crate::enforced::{Enforced, EnforcedApp};
use crate::error::{GatewayError, codes};

/// Admits `channel`'s call of `app`/`action` at `now`, or says why not.
pub fn admit<'a>(
    enforced: &'a Enforced,
    channel: &str,
    app: &str,
    action: &str,
    body: &InvokeBody,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'a Arc<EnforcedApp>, GatewayError> {
    let entry = enforced
        .app(app)
        .ok_or_else(|| GatewayError::of(codes::APP_UNKNOWN, format!("no application `{app}` in the catalog")))?;
    match entry.spec.state {
        FilingState::Online => {}
        FilingState::Suspended => {
            return Err(GatewayError::of(codes::APP_SUSPENDED, format!("application `{app}` is suspended"))
                .with_notice(entry.spec.notice.clone()));
        }
        other => {
            return Err(GatewayError::of(codes::APP_NOT_ONLINE, format!("application `{app}` is {}, not online", other.as_str())));
        }
    }
    if !entry.spec.actions.contains_key(action) {
        return Err(GatewayError::of(codes::ACTION_UNKNOWN, format!("application `{app}` has no action `{action}`")));
    }
    let ch = enforced
        .channel(channel)
        .ok_or_else(|| GatewayError::of(codes::CHANNEL_NOT_AUTHORIZED, format!("channel {channel} is not in the catalog")))?;
    if ch.status != ActiveStatus::Active {
        return Err(GatewayError::of(codes::CHANNEL_SUSPENDED, format!("channel {channel} is not active")));
    }
    let no_grant = || GatewayError::of(codes::CHANNEL_NOT_AUTHORIZED, format!("channel {channel} holds no live grant for `{app}`/`{action}`"));
    let grant = enforced.grant(channel, app).ok_or_else(no_grant)?;
    let live = grant.status == GrantStatus::Active && grant.not_before <= now && now < grant.not_after;
    if !live || !grant.actions.contains(action) {
        return Err(no_grant());
    }
    if let Some(venue_id) = &body.venue {
        let not_registered = |why: &str| GatewayError::of(codes::VENUE_NOT_REGISTERED, format!("venue `{venue_id}` {why}")).with_field("venue");
        let venue = enforced.venue(venue_id).ok_or_else(|| not_registered("is not in the catalog"))?;
        if venue.application != app {
            return Err(not_registered(&format!("is not registered to `{app}`")));
        }
        if venue.status != ActiveStatus::Active {
            return Err(not_registered("is not active"));
        }
        if venue.operator_channel.as_deref().is_some_and(|op| op != channel) {
            return Err(not_registered(&format!("is operated by another channel than {channel}")));
        }
        if let Some(terminal) = &body.terminal
            && !venue.terminals.is_empty()
            && !venue.terminals.contains(terminal)
        {
            return Err(GatewayError::of(codes::TERMINAL_NOT_REGISTERED, format!("terminal `{terminal}` is not registered at venue `{venue_id}`"))
                .with_field("terminal"));
        }
    } else if body.terminal.is_some() {
        return Err(GatewayError::of(codes::INVALID_BODY, "a terminal is named only with its venue").with_field("venue"));
    }
    if let Err(why) = &entry.plugin {
        return Err(GatewayError::of(codes::PLUGIN_UNAVAILABLE, format!("application `{app}`: {why}")));
    }
    Ok(entry)
}
