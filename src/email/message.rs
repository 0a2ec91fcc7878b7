//! An outbox row as a MIME message: multipart/alternative with plain text and HTML (and,
//! for patients, the invitation as text/calendar, which calendar-aware clients act on),
//! plus the same invitation attached as `invite.ics` for the rest.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::ics::Method;
use crate::config::Settings;
use crate::store::outbox::Email;

pub fn build(settings: &Settings, email: &Email) -> anyhow::Result<Message> {
    let from = Mailbox::new(
        Some(settings.clinic.name.clone()),
        settings.email.from.parse()?,
    );
    let reply_to = Mailbox::new(
        Some(settings.clinic.name.clone()),
        settings.email.front_desk.parse()?,
    );
    let to: Mailbox = email.recipient.parse()?;
    let mut alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(email.body_text.clone()))
        .singlepart(SinglePart::html(email.body_html.clone()));
    let builder = Message::builder()
        .from(from)
        .reply_to(reply_to)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .date_now();
    let message = match &email.ics {
        Some(ics) => {
            let method = Method::for_kind(&email.kind).as_str();
            alternative = alternative.singlepart(
                SinglePart::builder()
                    .header(ContentType::parse(&format!(
                        "text/calendar; method={method}; charset=UTF-8"
                    ))?)
                    .body(ics.clone()),
            );
            builder.multipart(
                MultiPart::mixed().multipart(alternative).singlepart(
                    Attachment::new("invite.ics".into())
                        .body(ics.clone(), ContentType::parse("application/ics")?),
                ),
            )?
        }
        None => builder.multipart(alternative)?,
    };
    Ok(message)
}
