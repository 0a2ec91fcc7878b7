//! Integration tests: each starts the real server with a fresh database, on SQLite and
//! (when DERMABOOK_TEST_POSTGRES_URL is set) on PostgreSQL.

mod helpers;
mod invariants;

mod auth;
mod bookings;
mod catalogue;
mod cli;
mod emails;
mod errors;
mod operations;
mod races;
mod scheduling;
mod smtp;
