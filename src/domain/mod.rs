//! Pure rules: no HTTP, no SQL. Each takes plain values and returns plain values, and is
//! unit-tested beside its code.

pub mod availability;
pub mod booking;
pub mod catalogue;
pub mod roles;
pub mod schedule;
