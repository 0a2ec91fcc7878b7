//! The challenge hook: where `challenge.verify_url` is set, an online booking (the API's
//! and the booking page's) carries the answer of a challenge widget (Cloudflare Turnstile,
//! hCaptcha, or the clinic's own verifier), which the server checks with the verifier's
//! siteverify endpoint (`secret`, `response`, `remoteip`, form-encoded; `{"success": ..}`
//! back) before the booking counts against any limit.
//!
//! An answer can be verified once, and it belongs to the request that first carried it:
//! a double click sends the same request twice, so both share one verification and the
//! idempotency key books once; the same answer on another request is refused, so one
//! solved challenge books once. A request that replays a booking already made under its
//! key needs no answer at all. The verification runs in a task of its own, so a browser
//! that drops its first request mid-way does not leave the answer spent and unjudged.

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
/// The most answers judged in `SHARED_FOR`: past it, a flood of made-up answers gets a
/// 503 rather than a verifier call each.
const MAX_PENDING: usize = 10_000;

type Verdict = Arc<OnceCell<Result<bool, String>>>;

/// An answer's verdict and the request it belongs to.
struct Judged {
    asked: Instant,
    binding: String,
    verdict: Verdict,
}

pub struct Challenges {
    settings: ChallengeSettings,
    verdicts: Mutex<HashMap<String, Judged>>,
}

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

fn busy() -> ApiError {
    ApiError::Http(
        StatusCode::SERVICE_UNAVAILABLE,
        "the check that you are not a robot cannot be made just now; please try again shortly"
            .into(),
    )
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

    /// Passes a request (`binding` names it: scope, key, body) whose `answer` the verifier
    /// accepts, or every request while the hook is off. A missing, refused or already
    /// used answer is a 422 on `challenge`; a verifier that cannot be asked is a 503.
    pub async fn pass(
        &self,
        answer: Option<&str>,
        binding: &str,
        client: Option<IpAddr>,
    ) -> ApiResult<()> {
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
        let key = crate::tokens::token_hash(answer);
        let verdict = self.verdict_of(&key, binding)?;
        // The verification runs on its own: a request dropped mid-way (a browser's first
        // click) leaves it to finish, and the second click shares its verdict.
        let cell = verdict.clone();
        let (settings, answer) = (self.settings.clone(), answer.to_string());
        let judged = actix_web::rt::spawn(async move {
            cell.get_or_init(|| verify(settings, answer, client))
                .await
                .clone()
        })
        .await
        .unwrap_or_else(|e| Err(format!("the verification stopped: {e}")));
        match judged {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::invalid(
                "challenge",
                "The check that you are not a robot did not pass. Please try it again.",
            )),
            Err(reason) => {
                tracing::warn!(reason, "the challenge verifier could not be asked");
                // Not kept: the next try with this answer asks again.
                self.forget(&key, &verdict);
                Err(busy())
            }
        }
    }

    /// The shared verdict of one answer for `binding`: new, or the one its first request
    /// started; another request's answer is refused. Forgets verdicts past `SHARED_FOR`.
    fn verdict_of(&self, key: &str, binding: &str) -> ApiResult<Verdict> {
        let now = Instant::now();
        let mut verdicts = self
            .verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verdicts.len() >= MAX_PENDING {
            verdicts.retain(|_, judged| now.duration_since(judged.asked) < SHARED_FOR);
            if verdicts.len() >= MAX_PENDING {
                return Err(busy());
            }
        }
        let fresh = || Judged {
            asked: now,
            binding: binding.to_string(),
            verdict: Arc::new(OnceCell::new()),
        };
        let judged = verdicts.entry(key.to_string()).or_insert_with(fresh);
        if now.duration_since(judged.asked) >= SHARED_FOR {
            *judged = fresh();
        }
        if judged.binding != binding {
            return Err(ApiError::invalid(
                "challenge",
                "This check was already used for another booking. Please do it again.",
            ));
        }
        Ok(judged.verdict.clone())
    }

    fn forget(&self, key: &str, verdict: &Verdict) {
        let mut verdicts = self
            .verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verdicts
            .get(key)
            .is_some_and(|judged| Arc::ptr_eq(&judged.verdict, verdict))
        {
            verdicts.remove(key);
        }
    }
}

/// Asks the verifier; `Err` when it could not be asked, answered nonsense, or says the
/// clinic's own settings are wrong (a refused secret is not the patient's failure).
async fn verify(
    settings: ChallengeSettings,
    answer: String,
    client: Option<IpAddr>,
) -> Result<bool, String> {
    let client_ip = client.map(|ip| ip.to_string()).unwrap_or_default();
    let mut form = vec![
        ("secret", settings.secret.trim()),
        ("response", answer.as_str()),
    ];
    if !client_ip.is_empty() {
        form.push(("remoteip", client_ip.as_str()));
    }
    // No redirects: the secret goes to the configured address and nowhere else.
    let mut answered = awc::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .disable_redirects()
        .finish()
        .post(settings.verify_url.trim())
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
    let ours = [
        "missing-input-secret",
        "invalid-input-secret",
        "bad-request",
    ];
    if let Some(code) = verdict
        .error_codes
        .iter()
        .find(|c| ours.contains(&c.as_str()))
    {
        return Err(format!("the verifier refused the clinic's request: {code}"));
    }
    Ok(verdict.success)
}
