//! Roles of the admin API (DESIGN.md) and the authenticated principal behind a bearer token.

use serde::{Deserialize, Serialize};

use crate::error::{Error, codes};

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Catalog and channels; files, brings online, suspends, terminates.
    ProvinceAdmin,
    /// Staff of a department: prepares and submits its filings.
    DepartmentStaff,
    /// Reviews (feasibility) its own department's filings.
    DepartmentReviewer,
    /// Security-tests submitted plugins.
    SecurityTester,
    /// Read-only, audit.
    Auditor,
    /// Changes card status.
    CardIssuer,
    /// Runs gateways of a city: syncs, reports, sets city limits.
    CityOperator,
    /// An authorized channel acting for a card holder (consents).
    Channel,
}

impl Role {
    /// Every role, for tables and tests.
    pub const ALL: [Role; 8] = [
        Role::ProvinceAdmin,
        Role::DepartmentStaff,
        Role::DepartmentReviewer,
        Role::SecurityTester,
        Role::Auditor,
        Role::CardIssuer,
        Role::CityOperator,
        Role::Channel,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProvinceAdmin => "province_admin",
            Role::DepartmentStaff => "department_staff",
            Role::DepartmentReviewer => "department_reviewer",
            Role::SecurityTester => "security_tester",
            Role::Auditor => "auditor",
            Role::CardIssuer => "card_issuer",
            Role::CityOperator => "city_operator",
            Role::Channel => "channel",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether tokens of this role are bound to a department.
    pub fn needs_department(self) -> bool {
        matches!(self, Role::DepartmentStaff | Role::DepartmentReviewer)
    }
}

/// Who is acting: from a bearer token, or the local operator of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Principal {
    /// Actor name recorded with every change.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Department (department roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// City (city operators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Channel (channel tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Principal {
    /// The operator working directly on a database file (`--db`): a province admin.
    pub fn local_operator() -> Principal {
        let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Principal {
            name: format!("local:{user}"),
            role: Role::ProvinceAdmin,
            department: None,
            city: None,
            channel: None,
        }
    }

    /// A principal of `role` named `name` (tests and tools).
    pub fn new(name: &str, role: Role) -> Principal {
        Principal { name: name.into(), role, department: None, city: None, channel: None }
    }

    /// Same principal bound to a department.
    pub fn in_department(mut self, department: &str) -> Principal {
        self.department = Some(department.into());
        self
    }

    /// Refuses unless the principal has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::forbidden(
                codes::ROLE_FORBIDDEN,
                format!(
                    "role {} may not do this; it needs {}",
                    self.role.as_str(),
                    names.join(" or ")
                ),
            ))
        }
    }

    /// Refuses a department-bound principal acting on another department's application.
    pub fn require_department(&self, department: &str) -> Result<(), Error> {
        if self.role.needs_department() && self.department.as_deref() != Some(department) {
            return Err(Error::forbidden(
                codes::FOREIGN_DEPARTMENT,
                format!(
                    "the application belongs to department {department}, not to {}",
                    self.department.as_deref().unwrap_or("(none)")
                ),
            ));
        }
        Ok(())
    }
}
