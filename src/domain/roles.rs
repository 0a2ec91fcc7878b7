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

super::text_enum! {
    /// What an integration's API key may do. A key works as the front desk would, never
    /// as an admin, within its scope.
    pub enum KeyScope {
        /// Reads only.
        Read => "read",
        /// Reads, and writes bookings (create, confirm, cancel, reschedule, outcomes).
        Bookings => "bookings",
    }
}

impl KeyScope {
    /// Whether a key of this scope may send `method` to `path`.
    pub fn allows(self, method: &str, path: &str) -> bool {
        let reads = matches!(method, "GET" | "HEAD");
        match self {
            KeyScope::Read => reads,
            KeyScope::Bookings => {
                reads
                    || path == "/api/v1/admin/bookings"
                    || path.starts_with("/api/v1/admin/bookings/")
            }
        }
    }
}

/// How long a sign-in waits after `failures` failed ones in a row: nothing for the first
/// three (typing mistakes), then a delay that doubles with each failure up to `cap`.
/// Never a lockout: anyone can fail on purpose, and a lockout would let them shut the
/// desk out of its own system.
pub fn sign_in_delay(failures: u32, cap: chrono::Duration) -> chrono::Duration {
    if failures <= 3 {
        return chrono::Duration::zero();
    }
    let seconds = 1i64 << (failures - 3).min(20);
    chrono::Duration::seconds(seconds).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_and_writes_only_what_its_scope_allows() {
        assert!(KeyScope::Read.allows("GET", "/api/v1/admin/bookings"));
        assert!(!KeyScope::Read.allows("POST", "/api/v1/admin/bookings"));
        assert!(KeyScope::Bookings.allows("POST", "/api/v1/admin/bookings/7/confirm"));
        assert!(!KeyScope::Bookings.allows("POST", "/api/v1/admin/bookingsx"));
        assert!(!KeyScope::Bookings.allows("PUT", "/api/v1/admin/dermatologists/1/schedule"));
        assert!(!KeyScope::Bookings.allows("DELETE", "/api/v1/admin/treatments/1"));
    }

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

    #[test]
    fn the_sign_in_delay_grows_to_its_cap_and_no_further() {
        let cap = chrono::Duration::seconds(60);
        assert_eq!(sign_in_delay(3, cap), chrono::Duration::zero());
        assert_eq!(sign_in_delay(4, cap), chrono::Duration::seconds(2));
        assert_eq!(sign_in_delay(6, cap), chrono::Duration::seconds(8));
        assert_eq!(sign_in_delay(40, cap), cap);
        assert_eq!(sign_in_delay(u32::MAX, cap), cap);
    }
}
