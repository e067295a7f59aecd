//! Rate-limit policies, set at the levels province → city → application → channel → venue →
//! card holder. A lower level may tighten a limit of the level above, never loosen it.

use serde::{Deserialize, Serialize};

/// The limits a policy sets; unset fields inherit from the level above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute for one channel calling one application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_per_minute: Option<u32>,
    /// Requests per minute from one venue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue_per_minute: Option<u32>,
    /// Requests per minute for one card holder on one application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_per_minute: Option<u32>,
    /// Requests per day for one card holder on one application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_per_day: Option<u32>,
}

impl Limits {
    /// `(name, value)` for each field.
    pub fn fields(&self) -> [(&'static str, Option<u32>); 4] {
        [
            ("channel_per_minute", self.channel_per_minute),
            ("venue_per_minute", self.venue_per_minute),
            ("holder_per_minute", self.holder_per_minute),
            ("holder_per_day", self.holder_per_day),
        ]
    }

    /// The limits in force below `self` when a child sets `child`: the tighter of each field.
    pub fn tightened_by(&self, child: &Limits) -> Limits {
        fn min(a: Option<u32>, b: Option<u32>) -> Option<u32> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Limits {
            channel_per_minute: min(self.channel_per_minute, child.channel_per_minute),
            venue_per_minute: min(self.venue_per_minute, child.venue_per_minute),
            holder_per_minute: min(self.holder_per_minute, child.holder_per_minute),
            holder_per_day: min(self.holder_per_day, child.holder_per_day),
        }
    }

    /// Fields of `self` that are looser than `parent`: `(name, own, parent's)`.
    pub fn looser_than(&self, parent: &Limits) -> Vec<(&'static str, u32, u32)> {
        self.fields()
            .into_iter()
            .zip(parent.fields())
            .filter_map(|((name, own), (_, theirs))| match (own, theirs) {
                (Some(o), Some(t)) if o > t => Some((name, o, t)),
                _ => None,
            })
            .collect()
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }
}

/// Where a policy applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyScope {
    /// A whole province.
    Province(String),
    /// A city.
    City(String),
    /// An application.
    Application(String),
    /// One channel calling one application.
    Channel {
        /// Application id.
        application: String,
        /// Channel id.
        channel: String,
    },
    /// A venue (of its application).
    Venue(String),
    /// One card holder on one application.
    Holder {
        /// Application id.
        application: String,
        /// Card reference.
        card_ref: String,
    },
}

impl std::fmt::Display for PolicyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyScope::Province(p) => write!(f, "province {p}"),
            PolicyScope::City(c) => write!(f, "city {c}"),
            PolicyScope::Application(a) => write!(f, "application {a}"),
            PolicyScope::Channel { application, channel } => {
                write!(f, "channel {channel} on application {application}")
            }
            PolicyScope::Venue(v) => write!(f, "venue {v}"),
            PolicyScope::Holder { application, card_ref } => {
                write!(f, "holder {card_ref} on application {application}")
            }
        }
    }
}

/// A policy as written in the declarative file: name the level by its fields
/// (`province`; `city`; `application`; `application` + `channel`; `venue`;
/// `application` + `holder`) and set limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Province code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// City code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Channel id (with `application`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Venue id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Card reference (with `application`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// See [`Limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_per_minute: Option<u32>,
    /// See [`Limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue_per_minute: Option<u32>,
    /// See [`Limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_per_minute: Option<u32>,
    /// See [`Limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_per_day: Option<u32>,
}

impl Policy {
    /// The level this policy applies to, or why its fields do not name one.
    pub fn scope(&self) -> Result<PolicyScope, String> {
        let p = self;
        match (&p.province, &p.city, &p.application, &p.channel, &p.venue, &p.holder) {
            (Some(x), None, None, None, None, None) => Ok(PolicyScope::Province(x.clone())),
            (None, Some(x), None, None, None, None) => Ok(PolicyScope::City(x.clone())),
            (None, None, Some(x), None, None, None) => Ok(PolicyScope::Application(x.clone())),
            (None, None, Some(a), Some(c), None, None) => Ok(PolicyScope::Channel {
                application: a.clone(),
                channel: c.clone(),
            }),
            (None, None, None, None, Some(v), None) => Ok(PolicyScope::Venue(v.clone())),
            (None, None, Some(a), None, None, Some(h)) => Ok(PolicyScope::Holder {
                application: a.clone(),
                card_ref: h.clone(),
            }),
            _ => Err("a policy names exactly one level: province; city; application; \
                      application + channel; venue; or application + holder"
                .into()),
        }
    }

    /// The limits it sets.
    pub fn limits(&self) -> Limits {
        Limits {
            channel_per_minute: self.channel_per_minute,
            venue_per_minute: self.venue_per_minute,
            holder_per_minute: self.holder_per_minute,
            holder_per_day: self.holder_per_day,
        }
    }

    /// A policy for `scope` setting `limits`.
    pub fn new(scope: PolicyScope, limits: Limits) -> Policy {
        let mut p = Policy {
            channel_per_minute: limits.channel_per_minute,
            venue_per_minute: limits.venue_per_minute,
            holder_per_minute: limits.holder_per_minute,
            holder_per_day: limits.holder_per_day,
            ..Policy::default()
        };
        match scope {
            PolicyScope::Province(x) => p.province = Some(x),
            PolicyScope::City(x) => p.city = Some(x),
            PolicyScope::Application(x) => p.application = Some(x),
            PolicyScope::Channel { application, channel } => {
                p.application = Some(application);
                p.channel = Some(channel);
            }
            PolicyScope::Venue(x) => p.venue = Some(x),
            PolicyScope::Holder { application, card_ref } => {
                p.application = Some(application);
                p.holder = Some(card_ref);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tightening_takes_the_smaller_value() {
        let province = Limits { holder_per_day: Some(20), channel_per_minute: Some(600), ..Default::default() };
        let city = Limits { holder_per_day: Some(10), venue_per_minute: Some(60), ..Default::default() };
        let eff = province.tightened_by(&city);
        assert_eq!(eff.holder_per_day, Some(10));
        assert_eq!(eff.channel_per_minute, Some(600));
        assert_eq!(eff.venue_per_minute, Some(60));
        assert!(city.looser_than(&province).is_empty());
        let loose = Limits { holder_per_day: Some(50), ..Default::default() };
        assert_eq!(loose.looser_than(&province), vec![("holder_per_day", 50, 20)]);
    }

    #[test]
    fn scope_needs_exactly_one_level() {
        let p = Policy { city: Some("3301".into()), province: Some("33".into()), ..Default::default() };
        assert!(p.scope().is_err());
        let p = Policy { application: Some("parks".into()), channel: Some("3300000001".into()), ..Default::default() };
        assert!(matches!(p.scope(), Ok(PolicyScope::Channel { .. })));
        assert!(Policy::default().scope().is_err());
    }
}
