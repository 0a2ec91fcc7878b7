//! When to try a failed message again: exponential backoff with "equal jitter", so that
//! many messages failing together (a mail server restart) do not retry together.

use chrono::Duration;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::hours(6);

/// The wait after `attempts` failed attempts (1 or more): `base * 2^(attempts-1)`, capped,
/// of which the second half is scaled by `jitter` (0.0 to 1.0, random in use).
pub fn delay(attempts: u32, base: Duration, jitter: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let full = (base * 2_i32.pow(exponent)).min(MAX_DELAY);
    let half = full / 2;
    let jittered_ms = (half.num_milliseconds() as f64 * jitter.clamp(0.0, 1.0)) as i64;
    half + Duration::milliseconds(jittered_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_and_stop_growing_at_the_cap() {
        let base = Duration::seconds(30);
        assert_eq!(delay(1, base, 0.0), Duration::seconds(15));
        assert_eq!(delay(1, base, 1.0), Duration::seconds(30));
        assert_eq!(delay(2, base, 1.0), Duration::seconds(60));
        assert_eq!(delay(4, base, 0.5), Duration::seconds(180));
        assert_eq!(delay(30, base, 1.0), MAX_DELAY);
        assert_eq!(delay(30, base, 0.0), MAX_DELAY / 2);
    }
}
