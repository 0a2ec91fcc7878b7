//! The demo clinic: four dermatologists, a real menu of treatments, and demo staff logins.
//! Seeding adds only what is missing, so running it twice changes nothing, and it never
//! undoes what the front desk changed since.

use chrono::NaiveTime;
use diesel::QueryResult;

use crate::db::{self, DbConnection, Exclusive, exclusive};
use crate::domain::catalogue::{Category, ScreeningQuestion};
use crate::domain::roles::Role;
use crate::domain::schedule::WeeklyRule;
use crate::staff::{StaffDraft, create_staff};
use crate::store::dermatologists::{self, DermatologistForm};
use crate::store::treatments::{self, TreatmentForm};
use crate::store::{schedules, staff};

pub const FRONT_DESK_EMAIL: &str = "frontdesk@harbourskin.example";
pub const FRONT_DESK_PASSWORD: &str = "demo-front-desk";
pub const ADMIN_EMAIL: &str = "admin@harbourskin.example";
pub const ADMIN_PASSWORD: &str = "demo-admin-password";

fn question(id: &str, text: &str) -> ScreeningQuestion {
    ScreeningQuestion {
        id: id.into(),
        text: text.into(),
    }
}

fn pregnancy() -> ScreeningQuestion {
    question(
        "pregnancy",
        "Are you pregnant, trying to conceive, or breastfeeding?",
    )
}

fn injection_questions() -> Vec<ScreeningQuestion> {
    vec![
        pregnancy(),
        question(
            "ingredient_allergy",
            "Do you have a known allergy to any injected ingredient (hyaluronic acid, vitamins, amino acids, lidocaine)?",
        ),
        question(
            "skin_infection",
            "Do you have an active skin infection, cold sore or open wound at the treatment area?",
        ),
        question(
            "blood_thinners",
            "Do you take blood thinners (warfarin, apixaban, clopidogrel, daily aspirin)?",
        ),
    ]
}

struct DemoTreatment {
    slug: &'static str,
    name: &'static str,
    category: Category,
    description: &'static str,
    duration: i32,
    buffer: i32,
    price_cents: i64,
    sessions: (i32, i32),
    interval_days: Option<i32>,
    requires_consultation: bool,
    preparation: &'static str,
    aftercare: &'static str,
    questions: Vec<ScreeningQuestion>,
}

const MESO_PREPARATION: &str = "Avoid aspirin, ibuprofen, fish oil and alcohol for 48 hours before, unless your doctor \
    prescribed them. Come with clean skin, without make-up or lotion on the area.";
const MESO_AFTERCARE: &str = "Small bumps and redness settle within 24 to 48 hours. For 24 hours avoid make-up, \
    exercise, saunas and swimming; for a week avoid strong sun. Drink plenty of water.";

fn demo_treatments() -> Vec<DemoTreatment> {
    vec![
        DemoTreatment {
            slug: "initial-consultation",
            name: "Initial dermatology consultation",
            category: Category::Consultation,
            description: "A dermatologist examines your skin, discusses your goals and medical history, and \
                recommends a treatment plan. Required before mesotherapy and laser treatments.",
            duration: 30,
            buffer: 0,
            price_cents: 12_000,
            sessions: (1, 1),
            interval_days: None,
            requires_consultation: false,
            preparation: "Bring a list of the medicines and skin products you use. Come without make-up if the \
                concern is on your face.",
            aftercare: "Your dermatologist will send your plan and any prescriptions by email within two working days.",
            questions: vec![pregnancy()],
        },
        DemoTreatment {
            slug: "mesotherapy-skin-rejuvenation",
            name: "Mesotherapy for skin rejuvenation",
            category: Category::Mesotherapy,
            description: "Micro-injections of hyaluronic acid, vitamins and amino acids into the face, neck and \
                décolletage to restore hydration, radiance and elasticity.",
            duration: 45,
            buffer: 15,
            price_cents: 25_000,
            sessions: (4, 5),
            interval_days: Some(14),
            requires_consultation: true,
            preparation: MESO_PREPARATION,
            aftercare: MESO_AFTERCARE,
            questions: injection_questions(),
        },
        DemoTreatment {
            slug: "mesotherapy-body-contouring",
            name: "Mesotherapy for body contouring",
            category: Category::Mesotherapy,
            description: "Lipolytic micro-injections into localised fat deposits of the abdomen, flanks or thighs \
                to refine the body's contour.",
            duration: 45,
            buffer: 15,
            price_cents: 28_000,
            sessions: (4, 5),
            interval_days: Some(14),
            requires_consultation: true,
            preparation: MESO_PREPARATION,
            aftercare: MESO_AFTERCARE,
            questions: injection_questions(),
        },
        DemoTreatment {
            slug: "mesotherapy-cellulite",
            name: "Mesotherapy for cellulite",
            category: Category::Mesotherapy,
            description: "Micro-injections that improve microcirculation and firm the skin, to smooth the dimpled \
                look of cellulite on thighs and buttocks.",
            duration: 45,
            buffer: 15,
            price_cents: 22_000,
            sessions: (4, 5),
            interval_days: Some(14),
            requires_consultation: true,
            preparation: MESO_PREPARATION,
            aftercare: MESO_AFTERCARE,
            questions: injection_questions(),
        },
        DemoTreatment {
            slug: "laser-treatment",
            name: "Laser treatment",
            category: Category::Laser,
            description: "Fractional laser resurfacing for pigmentation, acne scars, fine lines and uneven texture.",
            duration: 60,
            buffer: 15,
            price_cents: 35_000,
            sessions: (1, 3),
            interval_days: Some(28),
            requires_consultation: true,
            preparation: "Avoid sun exposure, tanning beds and self-tan for four weeks before. Stop retinoids and \
                exfoliating acids five days before. Shave the area the day before if it has hair.",
            aftercare: "Expect redness like sunburn for two to three days. Use a gentle cleanser, moisturiser and \
                SPF 50 daily; do not pick at flaking skin; avoid sun for four weeks.",
            questions: vec![
                pregnancy(),
                question(
                    "skin_infection",
                    "Do you have an active skin infection, cold sore or open wound at the treatment area?",
                ),
                question(
                    "blood_thinners",
                    "Do you take blood thinners (warfarin, apixaban, clopidogrel, daily aspirin)?",
                ),
                question(
                    "photosensitising_medication",
                    "Have you taken isotretinoin in the last six months, or do you take medicine that makes skin sensitive to light?",
                ),
            ],
        },
    ]
}

/// (name, title, email, bio, slugs of treatments performed)
const DEMO_DERMATOLOGISTS: [(&str, &str, &str, &str, &[&str]); 4] = [
    (
        "Dr Amelia Hart",
        "Consultant Dermatologist",
        "amelia.hart@harbourskin.example",
        "Fifteen years in medical and aesthetic dermatology; leads the clinic's laser service.",
        &[
            "initial-consultation",
            "mesotherapy-skin-rejuvenation",
            "laser-treatment",
        ],
    ),
    (
        "Dr Rohan Mehta",
        "Dermatologist",
        "rohan.mehta@harbourskin.example",
        "Specialises in injectable treatments for skin quality and body contouring.",
        &[
            "initial-consultation",
            "mesotherapy-skin-rejuvenation",
            "mesotherapy-body-contouring",
            "mesotherapy-cellulite",
        ],
    ),
    (
        "Dr Sofia Lindqvist",
        "Aesthetic Dermatologist",
        "sofia.lindqvist@harbourskin.example",
        "Trained in Stockholm; focuses on cellulite and body treatments.",
        &[
            "initial-consultation",
            "mesotherapy-body-contouring",
            "mesotherapy-cellulite",
        ],
    ),
    (
        "Dr Daniel Okafor",
        "Dermatologist",
        "daniel.okafor@harbourskin.example",
        "Treats pigmentation and scarring in all skin types with laser and peels.",
        &["initial-consultation", "laser-treatment"],
    ),
];

/// Adds whatever part of the demo clinic is missing; returns how many records it added.
/// Exclusive across instances: two servers seeding one database at once add it once.
/// Whether the demo logins, whose passwords are published, may exist on a server bound
/// to `bind`: only on a loopback address with no proxy in front (a proxy would bring
/// the world to it), where no one else can reach them.
pub fn logins_allowed(settings: &crate::config::Settings) -> bool {
    settings.server.trusted_proxies.is_empty() && loopback(&settings.server.bind)
}

/// Deactivates the demo logins, where they exist: a server that may not have them.
pub fn retire_logins(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let mut retired = 0;
    for (email, ..) in DEMO_LOGINS {
        if let Some(login) = staff::by_email(conn, email)?.filter(|s| s.active) {
            retired += staff::set_active(conn, login.id, false, db::now())?;
            staff::end_sessions(conn, login.id, None)?;
        }
    }
    Ok(retired)
}

fn loopback(bind: &str) -> bool {
    let host = bind.rsplit_once(':').map_or(bind, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Adds what is missing of the demo clinic; its logins only when `with_logins`.
pub fn seed(conn: &mut DbConnection, with_logins: bool) -> anyhow::Result<usize> {
    let added = exclusive(conn, Exclusive::DemoSeed, |conn| -> anyhow::Result<usize> {
        let mut added = 0;
        for t in demo_treatments() {
            if treatments::by_slug(conn, t.slug)?.is_none() {
                treatments::insert(conn, &treatment_form(&t)?)?;
                added += 1;
            }
        }
        for (name, title, email, bio, slugs) in DEMO_DERMATOLOGISTS {
            if dermatologists::by_email(conn, email)?.is_some() {
                continue;
            }
            let form = DermatologistForm {
                name: name.into(),
                title: title.into(),
                bio: bio.into(),
                email: email.into(),
                active: true,
                updated_at: db::now(),
            };
            let created = dermatologists::insert(conn, &form)?;
            let ids = treatment_ids(conn, slugs)?;
            dermatologists::set_treatments(conn, created.id, &ids)?;
            schedules::replace_rules(conn, created.id, &weekday_hours())?;
            added += 1;
        }
        let logins = if with_logins { DEMO_LOGINS } else { &[] };
        for &(email, name, role, password) in logins {
            if staff::by_email(conn, email)?.is_none() {
                let new = StaffDraft {
                    email: email.into(),
                    name: name.into(),
                    role,
                    password: password.into(),
                    dermatologist_id: None,
                };
                create_staff(conn, new)?;
                added += 1;
            }
        }
        Ok(added)
    })
    .map_err(|e| anyhow::anyhow!("seeding the demo clinic: {e}"))?;
    if added > 0 {
        tracing::info!(added, "demo clinic seeded");
    }
    Ok(added)
}

const DEMO_LOGINS: &[(&str, &str, Role, &str)] = &[
    (
        FRONT_DESK_EMAIL,
        "Front Desk (demo)",
        Role::FrontDesk,
        FRONT_DESK_PASSWORD,
    ),
    (
        ADMIN_EMAIL,
        "Clinic Admin (demo)",
        Role::Admin,
        ADMIN_PASSWORD,
    ),
];

/// Monday to Friday, 09:00-12:30 and 13:30-17:00, in 15-minute slots.
fn weekday_hours() -> Vec<WeeklyRule> {
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("a valid time");
    (1..=5)
        .flat_map(|weekday| {
            [(at(9, 0), at(12, 30)), (at(13, 30), at(17, 0))].map(|(start, end)| WeeklyRule {
                weekday,
                start,
                end,
                slot_minutes: 15,
                valid_from: None,
                valid_until: None,
            })
        })
        .collect()
}

fn treatment_ids(conn: &mut DbConnection, slugs: &[&str]) -> QueryResult<Vec<i64>> {
    let mut ids = Vec::new();
    for slug in slugs {
        if let Some(t) = treatments::by_slug(conn, slug)? {
            ids.push(t.id);
        }
    }
    Ok(ids)
}

fn treatment_form(t: &DemoTreatment) -> anyhow::Result<TreatmentForm> {
    Ok(TreatmentForm {
        slug: t.slug.into(),
        name: t.name.into(),
        category: t.category,
        description: t.description.into(),
        duration_minutes: t.duration,
        buffer_minutes: t.buffer,
        price_cents: t.price_cents,
        currency: "GBP".into(),
        sessions_min: t.sessions.0,
        sessions_max: t.sessions.1,
        session_interval_days: t.interval_days,
        requires_consultation: t.requires_consultation,
        preparation: t.preparation.into(),
        aftercare: t.aftercare.into(),
        screening_questions: serde_json::to_string(&t.questions)?,
        active: true,
        updated_at: db::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::{is_valid_slug, screening_questions_problem};
    use crate::domain::schedule::check_rules;

    #[test]
    fn the_demo_menu_obeys_the_catalogue_rules() {
        let menu = demo_treatments();
        assert_eq!(menu.len(), 5);
        for t in &menu {
            assert!(is_valid_slug(t.slug), "{}", t.slug);
            assert_eq!(
                screening_questions_problem(&t.questions),
                None,
                "{}",
                t.slug
            );
            assert!(
                !t.preparation.is_empty() && !t.aftercare.is_empty(),
                "{}",
                t.slug
            );
            assert!(t.sessions.0 <= t.sessions.1);
            assert_eq!(t.sessions.1 > 1, t.interval_days.is_some(), "{}", t.slug);
        }
        assert!(check_rules(&weekday_hours()).is_empty());
        for (_, _, _, _, slugs) in DEMO_DERMATOLOGISTS {
            assert!(slugs.iter().all(|s| menu.iter().any(|t| t.slug == *s)));
        }
    }
}
