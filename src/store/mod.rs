//! Diesel queries, one file per aggregate. Functions take a `&mut DbConnection`, so they
//! run inside or outside a transaction alike, and return diesel's `QueryResult`.

pub mod api_keys;
pub mod audit;
pub mod availability;
pub mod bookings;
pub mod calendar_feeds;
pub mod dermatologists;
pub mod idempotency;
pub mod login_failures;
pub mod outbox;
pub mod patient_bookings;
pub mod patients;
pub mod rate;
pub mod schedules;
pub mod slots;
pub mod staff;
pub mod treatments;
pub mod webhooks;
