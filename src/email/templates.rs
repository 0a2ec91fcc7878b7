//! The email templates: a clinic's own folder first, then the copies built in from
//! `templates/email/`. Compiled once, and again when a file they came from changes, so
//! a reworded template applies to the next message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Every template, by name, as shipped.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "layout.txt",
        include_str!("../../templates/email/layout.txt"),
    ),
    (
        "layout.html",
        include_str!("../../templates/email/layout.html"),
    ),
    (
        "notice_layout.txt",
        include_str!("../../templates/email/notice_layout.txt"),
    ),
    (
        "details.txt",
        include_str!("../../templates/email/details.txt"),
    ),
    (
        "details.html",
        include_str!("../../templates/email/details.html"),
    ),
    (
        "prepare.txt",
        include_str!("../../templates/email/prepare.txt"),
    ),
    (
        "prepare.html",
        include_str!("../../templates/email/prepare.html"),
    ),
    (
        "confirmation.txt",
        include_str!("../../templates/email/confirmation.txt"),
    ),
    (
        "confirmation.html",
        include_str!("../../templates/email/confirmation.html"),
    ),
    (
        "pending_review.txt",
        include_str!("../../templates/email/pending_review.txt"),
    ),
    (
        "pending_review.html",
        include_str!("../../templates/email/pending_review.html"),
    ),
    (
        "confirmed.txt",
        include_str!("../../templates/email/confirmed.txt"),
    ),
    (
        "confirmed.html",
        include_str!("../../templates/email/confirmed.html"),
    ),
    (
        "rescheduled.txt",
        include_str!("../../templates/email/rescheduled.txt"),
    ),
    (
        "rescheduled.html",
        include_str!("../../templates/email/rescheduled.html"),
    ),
    (
        "cancelled.txt",
        include_str!("../../templates/email/cancelled.txt"),
    ),
    (
        "cancelled.html",
        include_str!("../../templates/email/cancelled.html"),
    ),
    (
        "reminder.txt",
        include_str!("../../templates/email/reminder.txt"),
    ),
    (
        "reminder.html",
        include_str!("../../templates/email/reminder.html"),
    ),
    (
        "front_desk_notice.txt",
        include_str!("../../templates/email/front_desk_notice.txt"),
    ),
    (
        "front_desk_notice.html",
        include_str!("../../templates/email/front_desk_notice.html"),
    ),
];

/// A message's rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone)]
pub struct Templates {
    /// The clinic's folder; `None` uses the built-in templates alone.
    dir: Option<PathBuf>,
}

impl Templates {
    pub fn new(dir: &str) -> Templates {
        Templates {
            dir: (!dir.trim().is_empty()).then(|| PathBuf::from(dir)),
        }
    }

    /// Renders `KIND.txt` (its `subject` block is the subject) and `KIND.html`. A clinic
    /// template that fails (a typo, a missing variable) is logged and the built-in one is
    /// used instead: a wording mistake must not stop bookings or their emails.
    pub fn render(
        &self,
        kind: &str,
        context: &impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        match render_with(&Compiled::current(&self.dir).env, kind, context) {
            Err(error) if self.dir.is_some() => {
                tracing::error!(
                    kind,
                    error = format!("{error:#}"),
                    "clinic email template failed; using the built-in one"
                );
                render_with(&Compiled::current(&None).env, kind, context)
            }
            result => result,
        }
    }
}

/// When a file was last written, and its length; `None` when there is none.
type FileStamp = Option<(SystemTime, u64)>;

fn file_stamp(path: &Path) -> FileStamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The templates of one folder, compiled once and kept while none of the files they
/// were read from (or looked for) changes: reading and compiling a dozen templates for
/// every message was a tenth of a booking's time, spent holding the write lock.
struct Compiled {
    env: Environment<'static>,
    /// Each name the loader looked for in the clinic's folder, as the file was first
    /// seen (a name minijinja could not compile is looked for again at each render).
    seen: Arc<Mutex<HashMap<String, FileStamp>>>,
}

/// Compiled templates by folder (`None`: the built-in ones alone).
static COMPILED: LazyLock<Mutex<HashMap<Option<PathBuf>, Arc<Compiled>>>> =
    LazyLock::new(Mutex::default);

impl Compiled {
    /// The folder's templates as its files are now: the kept ones while every file they
    /// came from is unchanged (a few `stat`s), else compiled anew.
    fn current(dir: &Option<PathBuf>) -> Arc<Compiled> {
        let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = compiled.get(dir) {
            let unchanged = dir.as_ref().is_none_or(|dir| {
                let seen = kept.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.iter()
                    .all(|(name, stamp)| file_stamp(&dir.join(name)) == *stamp)
            });
            if unchanged {
                return kept.clone();
            }
        }
        let fresh = Arc::new(Compiled::new(dir.clone()));
        compiled.insert(dir.clone(), fresh.clone());
        fresh
    }

    fn new(dir: Option<PathBuf>) -> Compiled {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let mut env = Environment::new();
        // A misspelt variable in a clinic's template is an error, not a silent blank;
        // `{% if name %}` may still test for a value that is absent.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let seen_by_loader = seen.clone();
        env.set_loader(move |name| {
            // Only names inside the folder: no `..`, no absolute path, no drive.
            let inside = Path::new(name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if let Some(dir) = &dir
                && inside
            {
                let path = dir.join(name);
                // Noted before reading: a change while it is read invalidates it too.
                let stamp = file_stamp(&path);
                seen_by_loader
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.to_string())
                    .or_insert(stamp);
                match std::fs::read_to_string(&path) {
                    Ok(source) => return Ok(Some(source)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("reading template {name}"),
                        )
                        .with_source(e));
                    }
                }
            }
            Ok(BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| source.to_string()))
        });
        Compiled { env, seen }
    }
}

fn render_with(
    env: &Environment<'static>,
    kind: &str,
    context: &impl Serialize,
) -> Result<Rendered, minijinja::Error> {
    {
        let context = Value::from(Serde(context));
        let text_template = env.get_template(&format!("{kind}.txt"))?;
        let mut text = text_template.render_captured(context.clone())?;
        let subject = text.with_state_mut(|state| state.render_block("subject"))?;
        let html = env.get_template(&format!("{kind}.html"))?.render(context)?;
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: tidy_text(text.output()),
            html,
        })
    }
}

/// Trims trailing spaces and collapses runs of blank lines that template tags leave.
fn tidy_text(text: &str) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        blank_run = if line.is_empty() { blank_run + 1 } else { 0 };
        if blank_run <= 1 {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a cancellation's templates are given, for a patient of that name.
    fn cancellation(name: &str) -> serde_json::Value {
        serde_json::json!({
            "patient": {"name": name}, "reference": "ABCD-EFGH", "actor": "patient",
            "clinic": {"name": "C", "address": "A", "phone": "P", "timezone": "Europe/London"},
            "treatment": {"name": "T"}, "dermatologist": {"name": "D", "title": "Dr"},
            "when": {"date": "d", "start": "s", "end": "e", "zone": "z"},
        })
    }

    #[test]
    fn a_clinic_template_replaces_the_built_in_one_and_the_rest_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cancelled.txt"),
            "{% extends \"notice_layout.txt\" %}{% block subject %}Sorry, {{ patient.name }}{% endblock %}\
             {% block content %}Cancelled {{ reference }}{% endblock %}",
        )
        .unwrap();
        let templates = Templates::new(dir.path().to_str().unwrap());
        let context = cancellation("Ada <script>");
        let rendered = templates.render("cancelled", &context).unwrap();
        assert_eq!(rendered.subject, "Sorry, Ada <script>");
        assert_eq!(rendered.text, "Cancelled ABCD-EFGH\n");
        // The HTML part is still the built-in one, and escapes what the patient typed.
        assert!(
            rendered.html.contains("Dear Ada &lt;script&gt;"),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn a_broken_clinic_template_falls_back_to_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("reminder.txt"),
            "{% block subject %}{{ oops.nope }",
        )
        .unwrap();
        let templates = Templates::new(dir.path().to_str().unwrap());
        let context = serde_json::json!({
            "patient": {"name": "Ada"}, "reference": "ABCD-EFGH", "actor": "patient",
            "clinic": {"name": "C", "address": "A", "phone": "P", "timezone": "Europe/London"},
            "treatment": {"name": "T", "preparation": "", "aftercare": ""},
            "dermatologist": {"name": "D", "title": ""}, "manage_url": "http://x/manage/t",
            "when": {"date": "d", "start": "s", "end": "e", "zone": "z"},
        });
        for _ in 0..50 {
            let rendered = templates.render("reminder", &context).unwrap();
            assert!(
                rendered.subject.starts_with("Reminder:"),
                "{}",
                rendered.subject
            );
        }
        // minijinja looks for a template it could not compile again at each render;
        // what the cache checks stays one entry a name.
        let compiled = Compiled::current(&templates.dir);
        assert!(compiled.seen.lock().unwrap().len() <= 3);
    }

    #[test]
    fn a_reworded_or_added_clinic_template_applies_to_the_next_message() {
        let dir = tempfile::tempdir().unwrap();
        let templates = Templates::new(dir.path().to_str().unwrap());
        let context = cancellation("Ada");
        let subject = || templates.render("cancelled", &context).unwrap().subject;
        assert!(subject().starts_with("Cancelled:"), "{}", subject());
        let write = |words: &str| {
            std::fs::write(
                dir.path().join("cancelled.txt"),
                format!("{{% block subject %}}{words}{{% endblock %}}"),
            )
            .unwrap()
        };
        write("Sorry");
        assert_eq!(subject(), "Sorry");
        write("We are sorry");
        assert_eq!(subject(), "We are sorry");
        std::fs::remove_file(dir.path().join("cancelled.txt")).unwrap();
        assert!(subject().starts_with("Cancelled:"), "{}", subject());
    }

    #[test]
    fn an_unknown_kind_is_an_error() {
        assert!(
            Templates::new("")
                .render("invoice", &serde_json::json!({}))
                .is_err()
        );
    }
}
