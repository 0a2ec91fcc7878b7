//! Rules of the catalogue: treatment categories, slugs, screening questions, and the
//! normal form of email addresses.

use serde::{Deserialize, Serialize};

super::text_enum! {
    pub enum Category {
        Consultation => "consultation",
        Mesotherapy => "mesotherapy",
        Laser => "laser",
    }
}

/// A yes/no question the patient answers when booking; a "yes" sends the booking to
/// review. `id` is what the booking's answers refer to, so it never changes meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreeningQuestion {
    pub id: String,
    pub text: String,
}

/// Lower-case ASCII words joined by single hyphens: `mesotherapy-skin-rejuvenation`.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The most screening questions a treatment may ask: a form, not a questionnaire.
pub const MAX_SCREENING_QUESTIONS: usize = 50;

/// Why a set of screening questions is unusable, if it is.
pub fn screening_questions_problem(questions: &[ScreeningQuestion]) -> Option<String> {
    if questions.len() > MAX_SCREENING_QUESTIONS {
        return Some(format!(
            "must have at most {MAX_SCREENING_QUESTIONS} questions"
        ));
    }
    for (index, question) in questions.iter().enumerate() {
        if !is_valid_question_id(&question.id) {
            return Some(format!(
                "[{index}].id must be 1 to 64 characters of a-z, 0-9 and _"
            ));
        }
        if question.text.trim().is_empty() || question.text.len() > 500 {
            return Some(format!("[{index}].text must be 1 to 500 characters"));
        }
        if questions[..index].iter().any(|q| q.id == question.id) {
            return Some(format!("[{index}].id `{}` is used twice", question.id));
        }
    }
    None
}

fn is_valid_question_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Email addresses are compared trimmed and lower-cased, so one person is one record.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An ISO 4217 code: three upper-case letters.
pub fn is_valid_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// An amount in minor units (pence, cents) from what a person types: `95`, `95.5`,
/// `95.50` or `1,250.00`; at most two decimals, never negative.
pub fn parse_amount(text: &str) -> Option<i64> {
    let text: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 9
        || fraction.len() > 2
        || !digits(whole)
        || !digits(fraction)
    {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

/// An amount in minor units as major units with two decimals: 9550 is `95.50`.
pub fn amount_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_people_type_them_and_written_back() {
        assert_eq!(parse_amount("95"), Some(9500));
        assert_eq!(parse_amount(" 95.5 "), Some(9550));
        assert_eq!(parse_amount("1,250.05"), Some(125005));
        assert_eq!(parse_amount("0.00"), Some(0));
        for bad in ["", "-5", "9.999", "ten", ".50", "1.2.3", "9999999999"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(amount_text(9550), "95.50");
        assert_eq!(amount_text(5), "0.05");
        assert_eq!(parse_amount(&amount_text(125005)), Some(125005));
    }

    fn question(id: &str, text: &str) -> ScreeningQuestion {
        ScreeningQuestion {
            id: id.into(),
            text: text.into(),
        }
    }

    #[test]
    fn slugs_are_hyphenated_lower_case_words() {
        assert!(is_valid_slug("laser"));
        assert!(is_valid_slug("mesotherapy-body-contouring"));
        for bad in [
            "",
            "Laser",
            "two--hyphens",
            "-leading",
            "trailing-",
            "spa ce",
            "ümlaut",
        ] {
            assert!(!is_valid_slug(bad), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn screening_questions_need_unique_well_formed_ids_and_text() {
        assert_eq!(
            screening_questions_problem(&[question("pregnancy", "Are you pregnant?")]),
            None
        );
        assert!(
            screening_questions_problem(&[question("Preg nancy", "x")])
                .unwrap()
                .starts_with("[0].id")
        );
        assert!(
            screening_questions_problem(&[question("a", "  ")])
                .unwrap()
                .starts_with("[0].text")
        );
        let twice = [question("a", "one"), question("a", "two")];
        assert!(
            screening_questions_problem(&twice)
                .unwrap()
                .contains("used twice")
        );
    }

    #[test]
    fn emails_compare_trimmed_and_lower_cased() {
        assert_eq!(
            normalise_email("  Ana.Silva@Example.COM "),
            "ana.silva@example.com"
        );
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(is_valid_currency("GBP"));
        assert!(!is_valid_currency("gbp"));
        assert!(!is_valid_currency("POUND"));
    }

    #[test]
    fn categories_round_trip() {
        for c in [
            Category::Consultation,
            Category::Mesotherapy,
            Category::Laser,
        ] {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("spa"), None);
    }
}
