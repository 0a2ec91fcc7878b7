//! The email templates: a clinic's own folder first, then the copies built in from
//! `templates/email/`. Read at every render, so a reworded template applies at once.

use std::path::PathBuf;

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

    fn environment(dir: Option<PathBuf>) -> Environment<'static> {
        let mut env = Environment::new();
        // A misspelt variable in a clinic's template is an error, not a silent blank;
        // `{% if name %}` may still test for a value that is absent.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_loader(move |name| {
            if let Some(dir) = &dir
                && !name.contains("..")
            {
                match std::fs::read_to_string(dir.join(name)) {
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
        env
    }

    /// Renders `KIND.txt` (its `subject` block is the subject) and `KIND.html`. A clinic
    /// template that fails (a typo, a missing variable) is logged and the built-in one is
    /// used instead: a wording mistake must not stop bookings or their emails.
    pub fn render(
        &self,
        kind: &str,
        context: &impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        match render_with(Self::environment(self.dir.clone()), kind, context) {
            Err(error) if self.dir.is_some() => {
                tracing::error!(
                    kind,
                    error = format!("{error:#}"),
                    "clinic email template failed; using the built-in one"
                );
                render_with(Self::environment(None), kind, context)
            }
            result => result,
        }
    }
}

fn render_with(
    env: Environment<'static>,
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
        let context = serde_json::json!({
            "patient": {"name": "Ada <script>"}, "reference": "ABCD-EFGH", "actor": "patient",
            "clinic": {"name": "C", "address": "A", "phone": "P", "timezone": "Europe/London"},
            "treatment": {"name": "T"}, "dermatologist": {"name": "D", "title": "Dr"},
            "when": {"date": "d", "start": "s", "end": "e", "zone": "z"},
        });
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
        let rendered = templates.render("reminder", &context).unwrap();
        assert!(
            rendered.subject.starts_with("Reminder:"),
            "{}",
            rendered.subject
        );
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
