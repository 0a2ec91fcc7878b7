//! Calendar invitations (RFC 5545 objects with RFC 5546 methods): REQUEST to add or move
//! the appointment, CANCEL to remove it. One UID per booking and a SEQUENCE that grows
//! with every move let calendars update the event they have rather than add another.

use chrono::NaiveDateTime;
use icalendar::{Calendar, Component, EventLike, EventStatus, Property};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

/// What an invitation says; times are UTC.
#[derive(Debug, Clone)]
pub struct Invitation<'a> {
    pub method: Method,
    pub uid: &'a str,
    pub sequence: u32,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub summary: &'a str,
    pub description: &'a str,
    pub location: &'a str,
    pub organizer_name: &'a str,
    pub organizer_email: &'a str,
    pub attendee_name: &'a str,
    pub attendee_email: &'a str,
    pub stamp: NaiveDateTime,
}

impl Invitation<'_> {
    pub fn to_ics(&self) -> String {
        let (method, status) = match self.method {
            Method::Request => ("REQUEST", EventStatus::Confirmed),
            Method::Cancel => ("CANCEL", EventStatus::Cancelled),
        };
        let mut organizer = Property::new("ORGANIZER", format!("mailto:{}", self.organizer_email));
        organizer.add_parameter("CN", self.organizer_name);
        let mut attendee = Property::new("ATTENDEE", format!("mailto:{}", self.attendee_email));
        attendee
            .add_parameter("CN", self.attendee_name)
            .add_parameter("ROLE", "REQ-PARTICIPANT")
            .add_parameter("RSVP", "FALSE");
        let event = icalendar::Event::new()
            .uid(self.uid)
            .sequence(self.sequence)
            .timestamp(self.stamp.and_utc())
            .starts(self.starts_at.and_utc())
            .ends(self.ends_at.and_utc())
            .summary(self.summary)
            .description(self.description)
            .location(self.location)
            .status(status)
            .append_property(organizer)
            .append_property(attendee)
            .done();
        let mut calendar = Calendar::empty();
        calendar
            .append_property(Property::new("VERSION", "2.0"))
            .append_property(Property::new("PRODID", "-//dermabook//booking//EN"))
            .append_property(Property::new("CALSCALE", "GREGORIAN"))
            .append_property(Property::new("METHOD", method))
            .push(event);
        calendar.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn invitation(method: Method, sequence: u32) -> String {
        let at = |h| {
            NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(h, 30, 0)
                .unwrap()
        };
        Invitation {
            method,
            uid: "K7M2-QX9D@harbourskin.example",
            sequence,
            starts_at: at(10),
            ends_at: at(11),
            summary: "Laser treatment, Harbour Skin Clinic",
            description: "Reference K7M2-QX9D; a comma, and a semicolon;",
            location: "12 Harbour Street, Bristol",
            organizer_name: "Harbour Skin Clinic",
            organizer_email: "bookings@harbourskin.example",
            attendee_name: "Ada Lovelace",
            attendee_email: "ada@example.com",
            stamp: at(9),
        }
        .to_ics()
    }

    #[test]
    fn a_request_carries_uid_sequence_and_utc_times() {
        let ics = invitation(Method::Request, 2);
        for line in [
            "BEGIN:VCALENDAR",
            "METHOD:REQUEST",
            "UID:K7M2-QX9D@harbourskin.example",
            "SEQUENCE:2",
            "DTSTART:20261201T103000Z",
            "DTEND:20261201T113000Z",
            "STATUS:CONFIRMED",
            "ORGANIZER;CN=Harbour Skin Clinic:mailto:bookings@harbourskin.example",
            "LOCATION:12 Harbour Street\\, Bristol",
        ] {
            assert!(ics.lines().any(|l| l == line), "no `{line}` in\n{ics}");
        }
        assert!(ics.contains("\r\n"), "lines end in CRLF");
    }

    #[test]
    fn a_cancellation_keeps_the_uid() {
        let ics = invitation(Method::Cancel, 3);
        assert!(ics.lines().any(|l| l == "METHOD:CANCEL"));
        assert!(ics.lines().any(|l| l == "STATUS:CANCELLED"));
        assert!(
            ics.lines()
                .any(|l| l == "UID:K7M2-QX9D@harbourskin.example")
        );
    }
}
