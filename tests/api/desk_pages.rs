//! The desk's pages for keeping the calendar, the treatments and the emails, and the
//! patient's reschedule page, driven over HTTP as a browser's forms send them (the
//! browser scenarios cover the flows people see most); what each change did is checked
//! through the API, on both databases.

use awc::http::header;
use serde_json::{Value, json};

use crate::emails::{eventually, outbox, use_smtp};
use crate::fixtures::{at, consultation, monday_ahead};
use crate::helpers::{Backend, TestApp};
use crate::on_both_databases;
use crate::smtp::TestSmtp;

/// A browser's session at the desk: its cookie and the CSRF token its forms carry.
struct DeskBrowser {
    base: String,
    client: awc::Client,
    cookie: String,
    csrf: String,
}

/// What a page answered: status, where it sends the browser, and the HTML.
struct Page {
    status: u16,
    location: String,
    html: String,
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_in(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    html[start..].split('"').next().unwrap().to_string()
}

/// The `name=value` of a cookie a response set.
fn cookie_set(response: &awc::ClientResponse<impl Sized>, name: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .expect("the cookie")
        .to_string()
}

impl DeskBrowser {
    async fn sign_in(app: &TestApp, email: &str, password: &str) -> DeskBrowser {
        let client = awc::Client::builder().disable_redirects().finish();
        let base = app.address.clone();
        let mut form = client
            .get(format!("{base}/desk/sign-in"))
            .send()
            .await
            .unwrap();
        let pre = cookie_set(&form, "dermabook_desk_sign_in");
        let html = String::from_utf8(form.body().await.unwrap().to_vec()).unwrap();
        let signed_in = client
            .post(format!("{base}/desk/sign-in"))
            .insert_header((header::COOKIE, pre.clone()))
            .send_form(&[
                ("csrf", csrf_in(&html).as_str()),
                ("email", email),
                ("password", password),
            ])
            .await
            .unwrap();
        assert_eq!(signed_in.status().as_u16(), 303);
        let cookie = format!("{pre}; {}", cookie_set(&signed_in, "dermabook_desk"));
        let mut browser = DeskBrowser {
            base,
            client,
            cookie,
            csrf: String::new(),
        };
        let day = browser.get("/desk").await;
        assert_eq!(day.status, 200, "{}", day.html);
        browser.csrf = csrf_in(&day.html);
        browser
    }

    async fn front_desk(app: &TestApp) -> DeskBrowser {
        DeskBrowser::sign_in(
            app,
            dermabook::demo::FRONT_DESK_EMAIL,
            dermabook::demo::FRONT_DESK_PASSWORD,
        )
        .await
    }

    async fn read<S>(mut response: awc::ClientResponse<S>) -> Page
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let location = response
            .headers()
            .get(header::LOCATION)
            .map_or_else(String::new, |l| l.to_str().unwrap().to_string());
        let html =
            String::from_utf8(response.body().limit(4 << 20).await.unwrap().to_vec()).unwrap();
        Page {
            status: response.status().as_u16(),
            location,
            html,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .insert_header((header::COOKIE, self.cookie.clone()))
            .send()
            .await
            .unwrap();
        DeskBrowser::read(response).await
    }

    /// Posts a form as the page would, with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_exactly(path, &form).await
    }

    async fn post_exactly(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header((header::COOKIE, self.cookie.clone()))
            .send_form(&form)
            .await
            .unwrap();
        DeskBrowser::read(response).await
    }
}

async fn slots_of(app: &TestApp, desk: &str, day: &str) -> Vec<Value> {
    let listed = app
        .get(
            &format!("/api/v1/admin/slots?dermatologist=1&from={day}&to={day}"),
            Some(desk),
        )
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    listed.body["slots"].as_array().unwrap().clone()
}

/// `HH:MM` of each slot, with its status.
fn times(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                &s["starts_at"].as_str().unwrap()[11..16],
                s["status"].as_str().unwrap()
            )
        })
        .collect()
}

async fn the_desk_keeps_the_calendar_from_its_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let desk = app.front_desk_token().await;
    let browser = DeskBrowser::front_desk(&app).await;
    let day = monday_ahead();
    let date = day.to_string();

    let page = browser.get("/desk/calendar?dermatologist=1").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Weekly hours"), "{}", page.html);

    // Hours whose end comes first are refused beside the field, and nothing changes.
    let before = app
        .get("/api/v1/admin/dermatologists/1/schedule", Some(&desk))
        .await;
    let refused = browser
        .post(
            "/desk/calendar/1/hours",
            &[
                ("weekday.0", "1"),
                ("start.0", ""),
                ("end.0", ""),
                ("slot_minutes.0", "30"),
                ("weekday.1", "1"),
                ("start.1", "11:00"),
                ("end.1", "09:00"),
                ("slot_minutes.1", "30"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    // The error stays beside the row it came from, past the blank one.
    assert!(
        refused.html.contains(r#"id="error-end-1""#),
        "{}",
        refused.html
    );
    assert!(refused.html.contains(r#"aria-describedby="error-end-1""#));
    assert!(
        refused
            .html
            .contains(r#"name="end.1" type="time" value="09:00""#)
    );
    let after = app
        .get("/api/v1/admin/dermatologists/1/schedule", Some(&desk))
        .await;
    assert_eq!(before.body, after.body);

    // Mondays 09:00 to 11:00 in half hours, the other rows left blank: the Monday has
    // four slots and the Tuesday none.
    let saved = browser
        .post(
            "/desk/calendar/1/hours",
            &[
                ("weekday.0", "1"),
                ("start.0", "09:00"),
                ("end.0", "11:00"),
                ("slot_minutes.0", "30"),
                ("weekday.1", "2"),
                ("start.1", ""),
                ("end.1", ""),
                ("slot_minutes.1", "30"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let shown = browser.get(&saved.location).await;
    assert!(
        shown.html.contains("Weekly hours saved: ") && shown.html.contains(" slots added, "),
        "{}",
        shown.html
    );
    let rules = app
        .get("/api/v1/admin/dermatologists/1/schedule", Some(&desk))
        .await;
    assert_eq!(
        rules.body["rules"],
        json!([{"weekday": 1, "start": "09:00", "end": "11:00", "slot_minutes": 30}])
    );
    assert_eq!(
        times(&slots_of(&app, &desk, &date).await),
        ["09:00 open", "09:30 open", "10:00 open", "10:30 open"]
    );
    let tuesday = (day + chrono::Duration::days(1)).to_string();
    assert!(slots_of(&app, &desk, &tuesday).await.is_empty());

    // Time off from 09:00 to 10:00 takes two slots away; removing it gives them back.
    let off = browser
        .post(
            "/desk/calendar/1/time-off",
            &[
                ("starts_at", &format!("{date}T09:00")),
                ("ends_at", &format!("{date}T10:00")),
                ("reason", "Conference"),
            ],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.html);
    let shown = browser.get(&off.location).await;
    assert!(shown.html.contains("Conference"));
    assert!(
        shown
            .html
            .contains("Time off added: 0 slots added, 2 removed."),
        "{}",
        shown.html
    );
    assert_eq!(
        times(&slots_of(&app, &desk, &date).await),
        ["10:00 open", "10:30 open"]
    );
    let listed = app
        .get("/api/v1/admin/dermatologists/1/time-off", Some(&desk))
        .await;
    let time_off_id = listed.body["time_off"][0]["id"].as_i64().unwrap();
    let backwards = browser
        .post(
            "/desk/calendar/1/time-off",
            &[
                ("starts_at", &format!("{date}T12:00")),
                ("ends_at", &format!("{date}T11:00")),
            ],
        )
        .await;
    assert_eq!(backwards.status, 422);
    assert!(backwards.html.contains(r#"id="error-ends_at""#));
    let removed = browser
        .post(
            &format!("/desk/calendar/1/time-off/{time_off_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.html);
    assert_eq!(slots_of(&app, &desk, &date).await.len(), 4);

    // Block a free slot from the day and open it again; a booked one cannot be blocked.
    let slots = slots_of(&app, &desk, &date).await;
    let first = slots[0]["id"].as_i64().unwrap();
    let blocked = browser
        .post(&format!("/desk/slots/{first}/block"), &[("date", &date)])
        .await;
    assert_eq!(blocked.status, 303);
    assert_eq!(blocked.location, format!("/desk?date={date}"));
    assert_eq!(
        times(&slots_of(&app, &desk, &date).await)[0],
        "09:00 blocked"
    );
    let refused = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    assert_eq!(refused.status, 409, "a blocked slot is not bookable");
    let reopened = browser
        .post(&format!("/desk/slots/{first}/open"), &[("date", &date)])
        .await;
    assert_eq!(reopened.status, 303);
    let booked = app
        .book(&consultation(&at(day, 9, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let held = browser
        .post(&format!("/desk/slots/{first}/block"), &[("date", &date)])
        .await;
    assert_eq!(held.status, 409);
    assert!(held.html.contains("That slot is booked"), "{}", held.html);
    assert_eq!(
        times(&slots_of(&app, &desk, &date).await)[0],
        "09:00 booked"
    );

    // An extra slot in the afternoon; one overlapping another is refused.
    let extra = browser
        .post(
            "/desk/slots",
            &[
                ("date", &date),
                ("dermatologist_id", "1"),
                ("time", "14:00"),
                ("minutes", "30"),
            ],
        )
        .await;
    assert_eq!(extra.status, 303);
    assert!(times(&slots_of(&app, &desk, &date).await).contains(&"14:00 open".to_string()));
    let overlapping = browser
        .post(
            "/desk/slots",
            &[
                ("date", &date),
                ("dermatologist_id", "1"),
                ("time", "14:15"),
                ("minutes", "30"),
            ],
        )
        .await;
    assert_eq!(overlapping.status, 409);
    assert!(overlapping.html.contains("overlaps another slot"));

    // Who performs what: only the consultation now.
    let performed = browser
        .post(
            "/desk/calendar/1/treatments",
            &[("treatment.initial-consultation", "yes")],
        )
        .await;
    assert_eq!(performed.status, 303, "{}", performed.html);
    let treatments = app
        .get("/api/v1/admin/dermatologists/1/treatments", Some(&desk))
        .await;
    assert_eq!(
        treatments.body["treatments"],
        json!(["initial-consultation"])
    );

    // Without the CSRF token, or from another site, nothing is done.
    let forged = browser
        .post_exactly("/desk/slots/1/block", &[("date", &date)])
        .await;
    assert_eq!(forged.status, 403);
    let count = slots_of(&app, &desk, &date).await.len();
    let cross = browser
        .client
        .post(format!("{}/desk/slots", browser.base))
        .insert_header((header::COOKIE, browser.cookie.clone()))
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .send_form(&[
            ("csrf", browser.csrf.as_str()),
            ("date", &date),
            ("dermatologist_id", "1"),
            ("time", "16:00"),
            ("minutes", "30"),
        ])
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    assert_eq!(slots_of(&app, &desk, &date).await.len(), count);

    // A dermatologist may not keep the calendar.
    crate::fixtures::dermatologist_login(&app, "amelia@harbourskin.example", 1).await;
    let doctor =
        DeskBrowser::sign_in(&app, "amelia@harbourskin.example", "a long enough password").await;
    for path in ["/desk/calendar", "/desk/treatments", "/desk/emails"] {
        assert_eq!(doctor.get(path).await.status, 403, "{path}");
    }
    let tried = doctor
        .post(
            "/desk/calendar/1/treatments",
            &[("treatment.laser-hair-removal", "yes")],
        )
        .await;
    assert_eq!(tried.status, 403);
    let treatments = app
        .get("/api/v1/admin/dermatologists/1/treatments", Some(&desk))
        .await;
    assert_eq!(
        treatments.body["treatments"],
        json!(["initial-consultation"])
    );
}

on_both_databases!(the_desk_keeps_the_calendar_from_its_pages);

async fn the_desk_adds_and_changes_a_treatment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = DeskBrowser::front_desk(&app).await;
    let menu = browser.get("/desk/treatments").await;
    assert_eq!(menu.status, 200);
    assert!(
        menu.html.contains("Initial dermatology consultation"),
        "{}",
        menu.html
    );
    let new = browser.get("/desk/treatments/new").await;
    assert_eq!(new.status, 200);
    assert!(
        new.html
            .contains(r#"name="currency" type="text" value="GBP""#),
        "{}",
        new.html
    );

    let fields = |price: &'static str, slug: &'static str| {
        vec![
            ("name", "Chemical peel"),
            ("slug", slug),
            ("category", "laser"),
            ("description", "A light peel for dull skin."),
            ("duration_minutes", "40"),
            ("buffer_minutes", "10"),
            ("price", price),
            ("currency", "gbp"),
            ("sessions_min", "1"),
            ("sessions_max", "3"),
            ("session_interval_days", "21"),
            ("preparation", "No retinoids for a week."),
            ("aftercare", ""),
            ("question_id.0", "pregnancy"),
            ("question_text.0", "Are you pregnant?"),
            ("question_id.1", ""),
            ("question_text.1", ""),
            ("active", "yes"),
        ]
    };
    let unreadable = browser
        .post("/desk/treatments", &fields("ninety", "chemical-peel"))
        .await;
    assert_eq!(unreadable.status, 422);
    assert!(
        unreadable.html.contains(r#"id="error-price""#),
        "{}",
        unreadable.html
    );
    let taken = browser
        .post("/desk/treatments", &fields("95", "initial-consultation"))
        .await;
    assert_eq!(taken.status, 409);
    assert!(taken.html.contains(r#"id="error-slug""#), "{}", taken.html);

    let added = browser
        .post("/desk/treatments", &fields("95.50", "chemical-peel"))
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    assert_eq!(added.location, "/desk/treatments");
    let shown = app.get("/api/v1/treatments/chemical-peel", None).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(shown.body["price_cents"], 9550);
    assert_eq!(shown.body["currency"], "GBP");
    assert_eq!(shown.body["sessions_max"], 3);
    assert_eq!(
        shown.body["screening_questions"],
        json!([{"id": "pregnancy", "text": "Are you pregnant?"}])
    );
    assert_eq!(shown.body["requires_consultation"], false);

    // Retired from the menu by its page: its form comes back filled, unticked "active".
    let desk = app.front_desk_token().await;
    let all = app.get("/api/v1/admin/treatments", Some(&desk)).await;
    let id = all.body["treatments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "chemical-peel")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let form = browser.get(&format!("/desk/treatments/{id}")).await;
    assert!(form.html.contains(r#"value="95.50""#), "{}", form.html);
    let mut retired = fields("99", "chemical-peel");
    retired.retain(|(name, _)| *name != "active");
    retired.push(("requires_consultation", "yes"));
    let changed = browser
        .post(&format!("/desk/treatments/{id}"), &retired)
        .await;
    assert_eq!(changed.status, 303, "{}", changed.html);
    let now = app
        .get(&format!("/api/v1/admin/treatments/{id}"), Some(&desk))
        .await;
    assert_eq!(now.body["price_cents"], 9900);
    assert_eq!(now.body["active"], false);
    assert_eq!(now.body["requires_consultation"], true);
    assert_eq!(
        app.get("/api/v1/treatments/chemical-peel", None)
            .await
            .status,
        404
    );
}

on_both_databases!(the_desk_adds_and_changes_a_treatment);

async fn the_desk_sees_a_failed_email_and_sends_it_again(backend: Backend) {
    let mut smtp = TestSmtp::start().await;
    smtp.stop();
    let app = TestApp::spawn_with(backend, |s| {
        use_smtp(s, &smtp);
        s.email.max_attempts = 1;
    })
    .await;
    let booked = app
        .book(&consultation(&at(monday_ahead(), 9, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    // Grace books and cancels while the mail server is down too.
    let cancelled = app
        .book(&consultation(
            &at(monday_ahead(), 11, 0),
            "grace@example.com",
        ))
        .await;
    assert_eq!(cancelled.status, 201);
    let token = cancelled.body["manage_token"].as_str().unwrap();
    assert_eq!(app.cancel(token, &json!({})).await.status, 200);
    assert!(eventually(&app, |app| outbox(app).iter().all(|e| e.status == "failed")).await);
    let confirmation_to = |recipient: &str| {
        outbox(&app)
            .into_iter()
            .find(|e| e.kind == "confirmation" && e.recipient == recipient)
            .unwrap()
    };
    let confirmation = confirmation_to("ada@example.com");
    let outdated = confirmation_to("grace@example.com");

    let browser = DeskBrowser::front_desk(&app).await;
    let failed = browser.get("/desk/emails").await;
    assert_eq!(failed.status, 200);
    assert!(failed.html.contains("ada@example.com"), "{}", failed.html);
    assert!(failed.html.contains(&confirmation.subject));

    smtp.restart().await;
    let misleading = browser
        .post(&format!("/desk/emails/{}/retry", outdated.id), &[])
        .await;
    assert_eq!(misleading.status, 409);
    assert!(
        misleading.html.contains("would mislead"),
        "{}",
        misleading.html
    );
    let retried = browser
        .post(&format!("/desk/emails/{}/retry", confirmation.id), &[])
        .await;
    assert_eq!(retried.status, 303);
    let received = smtp.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, ["ada@example.com"]);
    assert!(
        eventually(&app, |app| outbox(app)
            .iter()
            .any(|e| e.id == confirmation.id && e.status == "sent"))
        .await
    );
    let again = browser
        .post(&format!("/desk/emails/{}/retry", confirmation.id), &[])
        .await;
    assert_eq!(again.status, 409);
    assert!(again.html.contains("already sent"), "{}", again.html);
    let sent = browser.get("/desk/emails?status=sent").await;
    assert!(sent.html.contains(&confirmation.subject));
}

on_both_databases!(the_desk_sees_a_failed_email_and_sends_it_again);

async fn a_patient_moves_their_appointment_from_the_manage_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let day = monday_ahead();
    let booked = app
        .book(&consultation(&at(day, 10, 0), "ada@example.com"))
        .await;
    assert_eq!(booked.status, 201);
    let token = booked.body["manage_token"].as_str().unwrap().to_string();
    let reference = booked.body["booking"]["reference"].clone();
    let client = awc::Client::builder().disable_redirects().finish();
    let page = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", app.address);
        async move { DeskBrowser::read(client.get(url).send().await.unwrap()).await }
    };

    let manage = page(format!("/manage/{token}")).await;
    assert!(manage.html.contains(&format!("/manage/{token}/reschedule")));
    let week = page(format!(
        "/manage/{token}/reschedule?week={day}&dermatologist=1"
    ))
    .await;
    assert_eq!(week.status, 200);
    assert!(week.html.contains("choose a new time"), "{}", week.html);
    let eleven = at(day, 11, 0);
    let link = format!(
        "/manage/{token}/reschedule?dermatologist_id=1&amp;starts_at={}",
        eleven.replace('+', "%2B")
    );
    // minijinja escapes the slashes of an attribute.
    assert!(
        week.html.replace("&#x2f;", "/").contains(&link),
        "{}",
        week.html
    );
    let asked = page(link.replace("&amp;", "&")).await;
    assert_eq!(asked.status, 200);
    assert!(
        asked.html.contains("Move your appointment?"),
        "{}",
        asked.html
    );
    let unchanged = app.manage(&token).await;
    assert_eq!(
        unchanged.body["booking"]["starts_at"],
        at(day, 10, 0),
        "asking moves nothing"
    );

    let post = |starts_at: String, site: &'static str| {
        let client = client.clone();
        let url = format!("{}/manage/{token}/reschedule", app.address);
        async move {
            let sent = client
                .post(url)
                .insert_header(("Sec-Fetch-Site", site))
                .send_form(&[("starts_at", starts_at.as_str()), ("dermatologist_id", "1")])
                .await
                .unwrap();
            DeskBrowser::read(sent).await
        }
    };
    let moved = post(eleven.clone(), "same-origin").await;
    assert_eq!(moved.status, 303);
    assert_eq!(moved.location, format!("/manage/{token}?rescheduled=1"));
    let now = app.manage(&token).await;
    assert_eq!(now.body["booking"]["starts_at"], eleven);
    assert_eq!(now.body["booking"]["reference"], reference);
    let id = now.body["booking"]["id"].as_i64().unwrap();
    assert!(crate::fixtures::queued_kinds(&app, id).contains(&"rescheduled".to_string()));

    // The same form again (the back button) finds it done, not taken.
    let again = post(eleven.clone(), "same-origin").await;
    assert_eq!(again.location, format!("/manage/{token}?rescheduled=1"));

    // A time someone else took meanwhile leads back to the times, with a message.
    let noon = at(day, 12, 0);
    let other = app.book(&consultation(&noon, "grace@example.com")).await;
    assert_eq!(other.status, 201);
    let taken = post(noon.clone(), "same-origin").await;
    assert_eq!(taken.status, 303);
    assert!(taken.location.ends_with("&taken=1"), "{}", taken.location);
    let back = page(taken.location.clone()).await;
    assert!(back.html.contains("taken by someone else"), "{}", back.html);

    // From another site, nothing moves.
    let forged = post(at(day, 14, 0), "cross-site").await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.manage(&token).await.body["booking"]["starts_at"],
        eleven
    );
}

on_both_databases!(a_patient_moves_their_appointment_from_the_manage_page);
