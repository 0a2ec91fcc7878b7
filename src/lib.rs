//! dermabook: the booking backend of a dermatology and aesthetic clinic.
//! `docs/ARCHITECTURE.md` says where things are.

pub mod api;
pub mod app;
pub mod booking;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod email;
pub mod instruments;
pub mod jobs;
pub mod scheduling;
pub mod secret;
pub mod staff;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;
pub mod webhooks;
