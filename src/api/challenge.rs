//! The challenge hook: where `challenge.verify_url` is set, an online booking (the API's
//! and the booking page's) carries the answer of a challenge widget (Cloudflare Turnstile,
//! hCaptcha, or the clinic's own verifier), which the server checks with the verifier's
//! siteverify endpoint (`secret`, `response`, `remoteip`, form-encoded; `{"success": ..}`
//! back) before the booking counts against any limit.
//!
//! An answer can be verified once: a double click sends the same answer twice, so each
//! answer is checked once and every request that carries it shares the verdict for a few
//! minutes; the idempotency key then books once. A request that replays a booking already
//! made under its key needs no answer at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::problem::{ApiError, ApiResult};
use crate::config::ChallengeSettings;

/// The header an API client sends the widget's answer in.
pub const HEADER: &str = "Challenge-Response";
/// How long a verdict is shared by the requests that carry the same answer.
const SHARED_FOR: Duration = Duration::from_secs(300);
/// Answers longer than this are no widget's (Turnstile's are about 2 kB at most).
const MAX_ANSWER: usize = 4096;

type Verdict = Arc<OnceCell<Result<bool, String>>>;

pub struct Challenges {
    settings: ChallengeSettings,
    verdicts: Mutex<HashMap<String, (Instant, Verdict)>>,
}

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
}

impl Challenges {
    pub fn new(settings: &ChallengeSettings) -> Challenges {
        Challenges {
            settings: settings.clone(),
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled()
    }

    /// Passes a request whose `answer` the verifier accepts, or every request while the
    /// hook is off. A missing or refused answer is a 422 on `challenge`; a verifier that
    /// cannot be reached is a 503.
    pub async fn pass(&self, answer: Option<&str>, client: Option<IpAddr>) -> ApiResult<()> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(answer) = answer
            .map(str::trim)
            .filter(|a| !a.is_empty() && a.len() <= MAX_ANSWER)
        else {
            return Err(ApiError::invalid(
                "challenge",
                "Please complete the check that you are not a robot.",
            ));
        };
        let verdict = self.verdict_of(answer);
        let verified = verdict
            .get_or_init(|| self.verify(answer.to_string(), client))
            .await;
        match verified {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::invalid(
                "challenge",
                "The check that you are not a robot did not pass. Please try it again.",
            )),
            Err(reason) => {
                tracing::warn!(reason, "the challenge verifier could not be asked");
                Err(ApiError::Http(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the check that you are not a robot cannot be made just now; please try again shortly"
                        .into(),
                ))
            }
        }
    }

    /// The shared verdict of one answer, new or already asked for; forgets old ones.
    fn verdict_of(&self, answer: &str) -> Verdict {
        let key = crate::tokens::token_hash(answer);
        let now = Instant::now();
        let mut verdicts = self
            .verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        verdicts.retain(|_, (asked, _)| now.duration_since(*asked) < SHARED_FOR);
        verdicts
            .entry(key)
            .or_insert_with(|| (now, Arc::new(OnceCell::new())))
            .1
            .clone()
    }

    /// Asks the verifier; `Err` when it could not be asked or answered nonsense.
    async fn verify(&self, answer: String, client: Option<IpAddr>) -> Result<bool, String> {
        let client_ip = client.map(|ip| ip.to_string()).unwrap_or_default();
        let mut form = vec![
            ("secret", self.settings.secret.as_str()),
            ("response", answer.as_str()),
        ];
        if !client_ip.is_empty() {
            form.push(("remoteip", client_ip.as_str()));
        }
        let mut answered = awc::Client::builder()
            .timeout(Duration::from_millis(self.settings.timeout_ms))
            .finish()
            .post(self.settings.verify_url.trim())
            .send_form(&form)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        if !answered.status().is_success() {
            return Err(format!("answered {}", answered.status()));
        }
        let body = answered
            .body()
            .limit(64 * 1024)
            .await
            .map_err(|e| format!("unreadable answer: {e}"))?;
        let verdict: SiteVerify =
            serde_json::from_slice(&body).map_err(|e| format!("not a siteverify answer: {e}"))?;
        Ok(verdict.success)
    }
}
