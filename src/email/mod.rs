//! Email: what each booking change sends (rendered from templates, with a calendar
//! invitation), written to the outbox in the change's own transaction.

pub mod compose;
pub mod ics;
pub mod templates;
