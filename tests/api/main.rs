//! Integration tests: each starts the real server with a fresh database, on SQLite and
//! (when DERMABOOK_TEST_POSTGRES_URL is set) on PostgreSQL.

mod fixtures;
mod helpers;
mod invariants;
mod logs;

mod abuse;
mod api_keys;
mod auth;
mod availability;
mod bookings;
mod browser;
mod calendar_feeds;
mod catalogue;
mod challenge;
mod cli;
mod contested;
mod contract;
mod data_rights;
mod desk_pages;
mod emails;
mod errors;
mod fhir;
mod front_desk;
mod manage_link;
mod metrics;
mod operations;
mod outbox;
mod pages;
mod patients;
mod races;
mod scheduling;
mod smtp;
mod staff_accounts;
mod sync;
mod webhooks;
