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

impl Method {
    /// The method a patient message of `kind` carries: a cancellation removes the
    /// event, every other message adds or updates it.
    pub fn for_kind(kind: &str) -> Method {
        if kind == "cancelled" {
            Method::Cancel
        } else {
            Method::Request
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// A TEXT value as the icalendar crate will escape it (backslash, comma, semicolon, line
/// feed): every other control character is dropped first, a CR among them, which that
/// escaping leaves raw and which some readers take as the end of a line.
fn text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

/// A parameter value (RFC 5545 3.2): no control characters and no DQUOTE, which the
/// crate would otherwise write raw; it quotes what has `:`, `;` or `,` itself.
fn param(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect()
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
        let status = match self.method {
            Method::Request => EventStatus::Confirmed,
            Method::Cancel => EventStatus::Cancelled,
        };
        let mut organizer = Property::new(
            "ORGANIZER",
            format!("mailto:{}", param(self.organizer_email)),
        );
        organizer.add_parameter("CN", &param(self.organizer_name));
        let mut attendee =
            Property::new("ATTENDEE", format!("mailto:{}", param(self.attendee_email)));
        attendee
            .add_parameter("CN", &param(self.attendee_name))
            .add_parameter("ROLE", "REQ-PARTICIPANT")
            .add_parameter("RSVP", "FALSE");
        let event = icalendar::Event::new()
            .uid(self.uid)
            .sequence(self.sequence)
            .timestamp(self.stamp.and_utc())
            .starts(self.starts_at.and_utc())
            .ends(self.ends_at.and_utc())
            .summary(&text(self.summary))
            .description(&text(self.description))
            .location(&text(self.location))
            .status(status)
            .append_property(organizer)
            .append_property(attendee)
            .done();
        let mut calendar = Calendar::empty();
        calendar
            .append_property(Property::new("VERSION", "2.0"))
            .append_property(Property::new("PRODID", "-//dermabook//booking//EN"))
            .append_property(Property::new("CALSCALE", "GREGORIAN"))
            .append_property(Property::new("METHOD", self.method.as_str()))
            .push(event);
        calendar.to_string()
    }
}

/// One appointment in a dermatologist's subscription; times are UTC.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub uid: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub summary: String,
    pub description: String,
    /// Awaiting the clinic's review: tentative, not confirmed.
    pub tentative: bool,
    pub updated_at: NaiveDateTime,
}

/// A subscription calendar (`METHOD:PUBLISH`) named `name`, as Google Calendar, Outlook
/// and Apple Calendar poll it: every event with a stable UID, so an update replaces it.
pub fn feed(name: &str, location: &str, events: &[FeedEvent], now: NaiveDateTime) -> String {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", "-//dermabook//calendar feed//EN"))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", "PUBLISH"))
        .append_property(Property::new("X-WR-CALNAME", text(name)))
        .append_property(Property::new("X-PUBLISHED-TTL", "PT1H"));
    // Ask subscribers to come back hourly (Outlook and Apple read these).
    let mut refresh = Property::new("REFRESH-INTERVAL", "PT1H");
    refresh.add_parameter("VALUE", "DURATION");
    calendar.append_property(refresh);
    for e in events {
        let status = if e.tentative {
            EventStatus::Tentative
        } else {
            EventStatus::Confirmed
        };
        calendar.push(
            icalendar::Event::new()
                .uid(&e.uid)
                .timestamp(now.and_utc())
                .last_modified(e.updated_at.and_utc())
                .starts(e.starts_at.and_utc())
                .ends(e.ends_at.and_utc())
                .summary(&text(&e.summary))
                .description(&text(&e.description))
                .location(&text(location))
                .status(status)
                .done(),
        );
    }
    calendar.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn invitation(method: Method, sequence: u32) -> String {
        base(method, sequence).to_ics()
    }

    fn base(method: Method, sequence: u32) -> Invitation<'static> {
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
    fn values_cannot_add_lines_or_parameters() {
        let evil = "Eve\r\nMETHOD:CANCEL\r\nATTACH:http://evil\";X=\"1";
        let ics = Invitation {
            attendee_name: evil,
            summary: evil,
            description: "line one\r\nline two\rMETHOD:CANCEL",
            ..base(Method::Request, 1)
        }
        .to_ics();
        let lines: Vec<&str> = ics.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("METHOD")).count(), 1);
        assert!(lines.contains(&"METHOD:REQUEST"));
        assert!(!lines.iter().any(|l| l.starts_with("ATTACH")), "{ics}");
        assert!(!ics.replace("\r\n", "").contains('\r'), "a bare CR: {ics}");
        let attendee = lines.iter().find(|l| l.starts_with("ATTENDEE")).unwrap();
        assert!(
            attendee.starts_with("ATTENDEE;CN=\"EveMETHOD:CANCELATTACH:http://evil';X='1\""),
            "{attendee}"
        );
        assert!(
            ics.contains("DESCRIPTION:line one\\nline twoMETHOD:CANCEL"),
            "{ics}"
        );
    }

    #[test]
    fn the_method_follows_the_kind_of_message() {
        assert_eq!(Method::for_kind("cancelled"), Method::Cancel);
        for kind in [
            "confirmation",
            "confirmed",
            "rescheduled",
            "reminder",
            "pending_review",
        ] {
            assert_eq!(Method::for_kind(kind), Method::Request);
        }
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
