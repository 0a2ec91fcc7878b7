//! Staff roles and what each may do.

super::text_enum! {
    pub enum Role {
        Admin => "admin",
        FrontDesk => "front_desk",
        Dermatologist => "dermatologist",
    }
}

impl Role {
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
