//! The filing workflow (备案): `draft → submitted → reviewed → security_tested → filed →
//! online ⇄ suspended → terminated`, each transition allowed to one role only.
//!
//! This module is the single place that decides whether a transition may happen; the store
//! records every accepted one (actor, role, time, note) forever.

use serde::{Deserialize, Serialize};

use crate::error::{Error, codes};
use crate::roles::{Principal, Role};

/// State of one filing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FilingState {
    /// Being prepared by the department.
    Draft,
    /// Submitted for review.
    Submitted,
    /// Feasibility reviewed by the department's reviewer.
    Reviewed,
    /// Security test passed.
    SecurityTested,
    /// Filed (备案) by the province.
    Filed,
    /// Serving traffic.
    Online,
    /// Temporarily refused; callers get the application's notice.
    Suspended,
    /// Ended for good.
    Terminated,
}

impl FilingState {
    /// Every state, for tables and tests.
    pub const ALL: [FilingState; 8] = [
        FilingState::Draft,
        FilingState::Submitted,
        FilingState::Reviewed,
        FilingState::SecurityTested,
        FilingState::Filed,
        FilingState::Online,
        FilingState::Suspended,
        FilingState::Terminated,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FilingState::Draft => "draft",
            FilingState::Submitted => "submitted",
            FilingState::Reviewed => "reviewed",
            FilingState::SecurityTested => "security_tested",
            FilingState::Filed => "filed",
            FilingState::Online => "online",
            FilingState::Suspended => "suspended",
            FilingState::Terminated => "terminated",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<FilingState> {
        FilingState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Online or suspended: the filing that defines the application for gateways.
    pub fn is_live(self) -> bool {
        matches!(self, FilingState::Online | FilingState::Suspended)
    }
}

/// The transitions of the workflow and the one role allowed to make each.
pub const TRANSITIONS: [(FilingState, FilingState, Role); 8] = {
    use FilingState::*;
    [
        (Draft, Submitted, Role::DepartmentStaff),
        (Submitted, Reviewed, Role::DepartmentReviewer),
        (Reviewed, SecurityTested, Role::SecurityTester),
        (SecurityTested, Filed, Role::ProvinceAdmin),
        (Filed, Online, Role::ProvinceAdmin),
        (Online, Suspended, Role::ProvinceAdmin),
        (Suspended, Online, Role::ProvinceAdmin),
        (Suspended, Terminated, Role::ProvinceAdmin),
    ]
};

/// The role allowed to move a filing from `from` to `to`, if the transition exists.
pub fn role_for(from: FilingState, to: FilingState) -> Option<Role> {
    TRANSITIONS.iter().find(|(f, t, _)| *f == from && *t == to).map(|(_, _, r)| *r)
}

/// Decides whether `who` may move a filing of an application owned by `department` from
/// `from` to `to`.
pub fn check_transition(
    department: &str,
    from: FilingState,
    to: FilingState,
    who: &Principal,
) -> Result<(), Error> {
    let Some(role) = role_for(from, to) else {
        return Err(Error::conflict(
            codes::INVALID_TRANSITION,
            format!("a filing cannot go from {} to {}", from.as_str(), to.as_str()),
        ));
    };
    if who.role != role {
        return Err(Error::forbidden(
            codes::ROLE_FORBIDDEN,
            format!(
                "only {} may move a filing from {} to {}, not {}",
                role.as_str(),
                from.as_str(),
                to.as_str(),
                who.role.as_str()
            ),
        ));
    }
    who.require_department(department)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilingState::*;

    /// The issue's list, written out independently of [`TRANSITIONS`].
    fn expected(from: FilingState, to: FilingState) -> Option<Role> {
        match (from, to) {
            (Draft, Submitted) => Some(Role::DepartmentStaff),
            (Submitted, Reviewed) => Some(Role::DepartmentReviewer),
            (Reviewed, SecurityTested) => Some(Role::SecurityTester),
            (SecurityTested, Filed) => Some(Role::ProvinceAdmin),
            (Filed, Online) => Some(Role::ProvinceAdmin),
            (Online, Suspended) => Some(Role::ProvinceAdmin),
            (Suspended, Online) => Some(Role::ProvinceAdmin),
            (Suspended, Terminated) => Some(Role::ProvinceAdmin),
            _ => None,
        }
    }

    #[test]
    fn state_machine_table_over_all_states_and_roles() {
        let mut allowed = 0;
        for from in FilingState::ALL {
            for to in FilingState::ALL {
                for role in Role::ALL {
                    let who = Principal::new("t", role).in_department("hz-parks");
                    let got = check_transition("hz-parks", from, to, &who);
                    match expected(from, to) {
                        None => {
                            let err = got.expect_err("transition not in the list");
                            assert_eq!(err.code(), codes::INVALID_TRANSITION, "{from:?}->{to:?} by {role:?}");
                        }
                        Some(r) if r == role => {
                            got.unwrap_or_else(|e| panic!("{from:?}->{to:?} by {role:?}: {e}"));
                            allowed += 1;
                        }
                        Some(_) => {
                            let err = got.expect_err("wrong role");
                            assert_eq!(err.code(), codes::ROLE_FORBIDDEN, "{from:?}->{to:?} by {role:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(allowed, 8, "each listed transition is allowed to exactly one role");
    }

    #[test]
    fn department_roles_only_act_on_their_own_department() {
        let staff = Principal::new("s", Role::DepartmentStaff).in_department("hz-transit");
        let err = check_transition("hz-parks", Draft, Submitted, &staff).expect_err("foreign");
        assert_eq!(err.code(), codes::FOREIGN_DEPARTMENT);
        let reviewer = Principal::new("r", Role::DepartmentReviewer).in_department("hz-transit");
        let err = check_transition("hz-parks", Submitted, Reviewed, &reviewer).expect_err("foreign");
        assert_eq!(err.code(), codes::FOREIGN_DEPARTMENT);
        let unbound = Principal::new("r", Role::DepartmentReviewer);
        assert!(check_transition("hz-parks", Submitted, Reviewed, &unbound).is_err());
    }
}
