//! Staff roles and what each may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    FrontDesk,
    Dermatologist,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FrontDesk => "front_desk",
            Role::Dermatologist => "dermatologist",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "front_desk" => Some(Role::FrontDesk),
            "dermatologist" => Some(Role::Dermatologist),
            _ => None,
        }
    }

    /// The front desk keeps the catalogue, schedules and bookings; admins may too.
    pub fn runs_the_clinic(self) -> bool {
        matches!(self, Role::Admin | Role::FrontDesk)
    }

    /// Only admins manage staff accounts.
    pub fn manages_staff(self) -> bool {
        self == Role::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_stored_name() {
        for role in [Role::Admin, Role::FrontDesk, Role::Dermatologist] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn dermatologists_neither_run_the_clinic_nor_manage_staff() {
        assert!(!Role::Dermatologist.runs_the_clinic());
        assert!(Role::FrontDesk.runs_the_clinic());
        assert!(!Role::FrontDesk.manages_staff());
        assert!(Role::Admin.manages_staff());
    }
}
