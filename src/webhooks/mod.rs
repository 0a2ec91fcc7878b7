//! Signed webhooks (the Standard Webhooks specification): the event types, the sealing of
//! endpoints' secrets, the checks on where a delivery may go, and the worker that
//! delivers the outbox the booking layer writes in each change's own transaction. Like
//! `email`, it reads its outbox and never calls `api`, `web` or `booking`.

pub mod event;
pub mod seal;
pub mod target;
pub mod worker;

pub use event::EventType;
