//! Email: what each booking change sends (rendered from templates, with a calendar
//! invitation), written to the outbox in the change's own transaction; and the worker
//! that sends the outbox through a transport (files or SMTP). Never calls `api`.

pub mod backoff;
pub mod compose;
pub mod ics;
pub mod message;
pub mod templates;
pub mod transport;
pub mod worker;
