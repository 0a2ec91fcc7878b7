//! The patient's pages in a real browser: Debian's Chromium driven through ChromeDriver
//! (WebDriver, by fantoccini), headless, at a phone's width. Every page a scenario passes
//! is checked by axe-core (injected from `target/browser`, installed by `.ci/run` from the
//! npm registry) for serious and critical violations, and saved as a screenshot under
//! `target/screenshots/`. Without Chromium the tests are skipped, except in CI.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::fixtures::consultation;
use crate::helpers::{Backend, TestApp, run_guarded};

const AXE: &str = "target/browser/node_modules/axe-core/axe.min.js";

/// ChromeDriver on a free port, stopped with the test.
struct Driver {
    process: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A headless Chromium session, or `None` where Chromium is not installed (never in CI).
async fn browser() -> Option<(Driver, Client)> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromedriver is missing: .ci/run installs chromium-driver"
        );
        eprintln!("chromedriver is not installed: the browser tests are skipped");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { process, port };
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=360,800", "--lang=en-US"],
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{}", driver.port);
    // ChromeDriver takes a moment to listen.
    for _ in 0..100 {
        // ChromeDriver speaks plain HTTP on loopback: no TLS stack is needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let connected = ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        if let Ok(client) = connected {
            return Some((driver, client));
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not connect to chromedriver");
}

/// Checks the page with axe-core and saves a screenshot named `step`.
async fn check_page(client: &Client, step: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::create_dir_all("target/screenshots").unwrap();
    std::fs::write(format!("target/screenshots/{step}.png"), png).unwrap();
    let axe = match std::fs::read_to_string(AXE) {
        Ok(source) => source,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {AXE} is missing: .ci/run installs axe-core"
            );
            return;
        }
    };
    client.execute(&axe, vec![]).await.unwrap();
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "axe on {step}");
}

/// Presses Tab until `css` has the focus, as someone without a mouse would; fails if it
/// cannot be reached.
async fn tab_to(client: &Client, css: &str) {
    let target = client.find(Locator::Css(css)).await.unwrap();
    let wanted = target.html(false).await.unwrap();
    for _ in 0..400 {
        let active = client.active_element().await.unwrap();
        if active.html(false).await.unwrap() == wanted {
            return;
        }
        active.send_keys(&Key::Tab.to_string()).await.unwrap();
    }
    panic!("{css} cannot be reached with the keyboard");
}

async fn type_into(client: &Client, css: &str, text: &str) {
    tab_to(client, css).await;
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn press(client: &Client, css: &str, key: Key) {
    tab_to(client, css).await;
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(&key.to_string())
        .await
        .unwrap();
}

async fn heading(client: &Client) -> String {
    // A click may still be loading the next page: read the heading once it holds still.
    let mut last = String::new();
    for _ in 0..100 {
        let text = match client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !text.is_empty() && text == last {
            return text;
        }
        last = text;
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Waits for the page whose heading contains `words`.
async fn wait_for_heading(client: &Client, words: &str) -> String {
    for _ in 0..100 {
        let text = heading(client).await;
        if text.contains(words) {
            return text;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no page with a heading containing {words:?}; the last was {:?}",
        heading(client).await
    );
}

/// The manage link in the newest email written for `recipient`.
fn emailed_manage_link(app: &TestApp, recipient: &str) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(&app.mail_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.replace("=\r\n", "").replace("=3D", "=");
        if !text.contains(recipient) {
            return None;
        }
        let start = text.find("http://")?;
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
            .collect();
        link.contains("/manage/").then_some(link)
    })
}

async fn a_patient_books_from_the_menu_with_the_keyboard_and_cancels_from_the_email() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    client.goto(&format!("{}/", app.address)).await.unwrap();
    check_page(&client, "1-menu").await;
    press(&client, "main p a.button", Key::Enter).await;

    // Next week, so that the booking may still be cancelled online.
    wait_for_heading(&client, "choose a time").await;
    check_page(&client, "2-times").await;
    press(&client, "nav.weeks a:last-of-type", Key::Enter).await;
    press(&client, "ul.times a", Key::Enter).await;

    wait_for_heading(&client, "Initial dermatology consultation").await;
    press(
        &client,
        "input[name='screening.pregnancy'][value='no']",
        Key::Space,
    )
    .await;
    type_into(&client, "#name", "Ada Lovelace").await;
    type_into(&client, "#email", "ada@example.com").await;
    type_into(&client, "#phone", "+44 7700 900123").await;
    type_into(&client, "#date_of_birth", "03141985").await;
    check_page(&client, "3-details").await;
    press(&client, "#consent", Key::Space).await;
    press(&client, "form button[type=submit]", Key::Enter).await;

    wait_for_heading(&client, "Review your booking").await;
    check_page(&client, "4-review").await;
    press(&client, "form[action$='/confirm'] button", Key::Enter).await;

    wait_for_heading(&client, "Your appointment is booked").await;
    check_page(&client, "5-booked").await;
    let reference = client
        .find(Locator::Css(".notice strong"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // The confirmation email's link opens the same booking.
    let mut link = None;
    for _ in 0..100 {
        link = emailed_manage_link(&app, "ada@example.com");
        if link.is_some() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let link = link.expect("a confirmation email with the manage link");
    let path = &link[link.find("/manage/").unwrap()..];
    client
        .goto(&format!("{}{path}", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, "Your appointment").await;
    let page = client.source().await.unwrap();
    assert!(page.contains(&reference), "{reference}");
    check_page(&client, "6-manage").await;

    press(&client, "a[href$='/cancel']", Key::Enter).await;
    wait_for_heading(&client, "Cancel your appointment?").await;
    check_page(&client, "7-cancel").await;
    press(&client, "form button", Key::Enter).await;
    wait_for_heading(&client, "Your appointment is cancelled").await;
    let status = app.manage(&path["/manage/".len()..]).await;
    assert_eq!(status.body["booking"]["status"], "cancelled");
    // The consent to the processing of the screening answers is kept with the booking.
    let id = status.body["booking"]["id"].as_i64().unwrap();
    let desk = app.front_desk_token().await;
    let kept = app
        .get(&format!("/api/v1/admin/bookings/{id}"), Some(&desk))
        .await;
    assert!(
        kept.body["health_data_consent_at"].is_string(),
        "{:?}",
        kept.body
    );
    client.close().await.unwrap();
}

/// Fills the consultation form by clicking, for the scenarios about what happens next.
async fn fill_consultation(client: &Client, pregnant: &str, email: &str) {
    client
        .find(Locator::Css(&format!(
            "input[name='screening.pregnancy'][value='{pregnant}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (css, text) in [
        ("#name", "Grace Hopper"),
        ("#email", email),
        ("#phone", "+44 7700 900456"),
        ("#date_of_birth", "12091986"),
    ] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    client
        .find(Locator::Css("#consent"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn first_time_path(client: &Client, app: &TestApp) -> (String, String) {
    client
        .goto(&format!("{}/book/initial-consultation", app.address))
        .await
        .unwrap();
    let link = client.find(Locator::Css("ul.times a")).await.unwrap();
    let href = link
        .attr("href")
        .await
        .unwrap()
        .unwrap()
        .replace("&amp;", "&");
    let starts_at = href.split("starts_at=").nth(1).unwrap().replace("%2B", "+");
    (href, starts_at)
}

async fn a_yes_answer_is_told_it_awaits_review_and_a_time_taken_meanwhile_leads_back() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let (href, _) = first_time_path(&client, &app).await;
    client
        .goto(&format!("{}{href}", app.address))
        .await
        .unwrap();
    fill_consultation(&client, "yes", "grace@example.com").await;
    client
        .find(Locator::Css("form[action$='/confirm'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&client, "we will review your answers").await;
    check_page(&client, "8-pending-review").await;

    // Someone else takes the next free time while this patient reviews.
    let (href, starts_at) = first_time_path(&client, &app).await;
    client
        .goto(&format!("{}{href}", app.address))
        .await
        .unwrap();
    fill_consultation(&client, "no", "late@example.com").await;
    wait_for_heading(&client, "Review your booking").await;
    let mut taken: Value = consultation(&starts_at, "quick@example.com");
    taken["dermatologist_id"] = json!(1);
    assert_eq!(app.book(&taken).await.status, 201);
    client
        .find(Locator::Css("form[action$='/confirm'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&client, "choose a time").await;
    let alert = client
        .find(Locator::Css("[role=alert]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(alert.contains("taken"), "{alert}");
    wait_for_heading(&client, "choose a time").await;
    check_page(&client, "9-taken-meanwhile").await;
    client.close().await.unwrap();
}

#[actix_web::test]
async fn a_patient_books_with_the_keyboard_and_cancels_from_the_email() {
    run_guarded(a_patient_books_from_the_menu_with_the_keyboard_and_cancels_from_the_email()).await;
}

#[actix_web::test]
async fn a_yes_answer_awaits_review_and_a_time_taken_meanwhile_leads_back() {
    run_guarded(a_yes_answer_is_told_it_awaits_review_and_a_time_taken_meanwhile_leads_back())
        .await;
}

async fn desk_sign_in(client: &Client, app: &TestApp, email: &str, password: &str) {
    client.goto(&format!("{}/desk", app.address)).await.unwrap();
    wait_for_heading(client, "Staff sign-in").await;
    type_into(client, "#email", email).await;
    type_into(client, "#password", password).await;
    press(client, "form button[type=submit]", Key::Enter).await;
}

async fn the_desk_signs_in_sees_the_day_and_confirms_a_pending_booking() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    // A booking awaiting review (a yes answer), on a Monday ahead at 10:00 London time.
    let day = crate::fixtures::monday_ahead();
    let starts_at = crate::fixtures::at(day, 10, 0);
    let mut pending = consultation(&starts_at, "ruth@example.com");
    pending["screening_answers"] = json!({"pregnancy": true});
    pending["patient"]["name"] = json!("Ruth Pending");
    let booked = app.book(&pending).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    assert_eq!(booked.body["booking"]["status"], "pending_review");
    let id = booked.body["booking"]["id"].as_i64().unwrap();

    desk_sign_in(
        &client,
        &app,
        dermabook::demo::FRONT_DESK_EMAIL,
        dermabook::demo::FRONT_DESK_PASSWORD,
    )
    .await;
    wait_for_heading(&client, "20").await;
    check_page(&client, "10-desk-today").await;
    let queue = client.source().await.unwrap();
    assert!(queue.contains("Ruth Pending"), "the review queue lists it");

    // The agenda of that day shows the booking in its dermatologist's column.
    client
        .goto(&format!("{}/desk?date={day}", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, &day.format("%-d").to_string()).await;
    let column = client
        .find(Locator::Css(".agenda .column"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(column.contains("Ruth Pending"), "{column}");
    check_page(&client, "11-desk-agenda").await;

    // A POST without the CSRF token is refused, even with the session cookie.
    let cookie = client.get_named_cookie("dermabook_desk").await.unwrap();
    let forged = awc::Client::default()
        .post(format!("{}/desk/bookings/{id}/confirm", app.address))
        .insert_header(("Cookie", format!("dermabook_desk={}", cookie.value())))
        .send_form(&[("date", day.to_string())])
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let still = app
        .get(
            &format!("/api/v1/admin/bookings/{id}"),
            Some(&app.front_desk_token().await),
        )
        .await;
    assert_eq!(still.body["status"], "pending_review");

    press(
        &client,
        &format!("form[action='/desk/bookings/{id}/confirm'] button"),
        Key::Enter,
    )
    .await;
    wait_for_heading(&client, &day.format("%-d").to_string()).await;
    let confirmed = app
        .get(
            &format!("/api/v1/admin/bookings/{id}"),
            Some(&app.front_desk_token().await),
        )
        .await;
    assert_eq!(confirmed.body["status"], "confirmed");
    assert!(
        !client.source().await.unwrap().contains("Confirm BOOK"),
        "the queue is empty"
    );

    // The booking's own page, from the agenda: its history, and a reschedule to 11:00.
    client
        .goto(&format!("{}/desk?date={day}", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, &day.format("%-d").to_string()).await;
    press(
        &client,
        &format!(".agenda a[href='/desk/bookings/{id}']"),
        Key::Enter,
    )
    .await;
    wait_for_heading(&client, "Ruth Pending").await;
    check_page(&client, "12-desk-booking").await;
    // A datetime-local field takes its value in the browser's locale when typed; set it.
    client
        .execute(
            "document.getElementById('starts_at').value = arguments[0];",
            vec![json!(format!("{day}T11:00"))],
        )
        .await
        .unwrap();
    client
        .find(Locator::Css("form[action$='/reschedule'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if client.source().await.unwrap().contains("reschedule") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = app
        .get(
            &format!("/api/v1/admin/bookings/{id}"),
            Some(&app.front_desk_token().await),
        )
        .await;
    assert_eq!(moved.body["starts_at"], crate::fixtures::at(day, 11, 0));
    assert!(
        client.source().await.unwrap().contains("reschedule"),
        "the history shows it"
    );

    // A phone patient, booked from the day's "Book for a phone patient".
    client
        .goto(&format!("{}/desk?date={day}", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, &day.format("%-d").to_string()).await;
    press(&client, "a[href^='/desk/book?date=']", Key::Enter).await;
    wait_for_heading(&client, "phone patient").await;
    check_page(&client, "15-desk-phone-booking").await;
    client
        .find(Locator::Css("input[name=slot]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name='screening.pregnancy'][value=no]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (css, text) in [
        ("#name", "Phil Phone"),
        ("#email", "phil@example.com"),
        ("#phone", "+44 7700 900999"),
    ] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    client
        .find(Locator::Css(
            "form[method=post][action='/desk/book'] button[type=submit]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&client, "Phil Phone").await;
    let listed = app
        .get(
            "/api/v1/admin/bookings?status=confirmed",
            Some(&app.front_desk_token().await),
        )
        .await;
    assert!(
        listed.body.to_string().contains("Phil Phone"),
        "{:?}",
        listed.body
    );

    // Sign-out ends the session: the desk is closed again.
    press(&client, "form[action='/desk/sign-out'] button", Key::Enter).await;
    wait_for_heading(&client, "Staff sign-in").await;
    client.goto(&format!("{}/desk", app.address)).await.unwrap();
    wait_for_heading(&client, "Staff sign-in").await;
    client.close().await.unwrap();
}

async fn a_dermatologist_sees_only_their_own_day() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/v1/admin/staff",
            Some(&admin),
            &json!({"email": "amelia@harbourskin.example", "name": "Dr Amelia Hart",
                    "role": "dermatologist", "password": "a long enough password",
                    "dermatologist_id": 1}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    desk_sign_in(
        &client,
        &app,
        "amelia@harbourskin.example",
        "a long enough password",
    )
    .await;
    wait_for_heading(&client, "20").await;
    let columns = client
        .find_all(Locator::Css(".agenda .column h3"))
        .await
        .unwrap();
    assert_eq!(columns.len(), 1, "only her own column");
    assert_eq!(columns[0].text().await.unwrap(), "Dr Amelia Hart");
    assert!(
        client.find(Locator::Css("#queue")).await.is_err(),
        "no review queue"
    );
    client
        .goto(&format!("{}/desk?dermatologist=2", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, "Not allowed").await;
    check_page(&client, "14-desk-not-allowed").await;
    client.close().await.unwrap();
}

#[actix_web::test]
async fn the_desk_signs_in_and_confirms_a_pending_booking() {
    run_guarded(the_desk_signs_in_sees_the_day_and_confirms_a_pending_booking()).await;
}

#[actix_web::test]
async fn a_dermatologist_cannot_open_anothers_day() {
    run_guarded(a_dermatologist_sees_only_their_own_day()).await;
}

async fn a_course_shows_every_session_before_it_is_confirmed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    // The patient had her consultation; mesotherapy comes as a course.
    let monday = crate::fixtures::monday_ahead();
    let planned =
        crate::fixtures::mesotherapy_with_consultation(&app, &crate::fixtures::at(monday, 10, 0))
            .await;
    let email = planned["patient"]["email"].as_str().unwrap().to_string();
    let first = crate::fixtures::at(monday, 10, 0).replace('+', "%2B");
    client
        .goto(&format!(
            "{}/book/mesotherapy-skin-rejuvenation/details?dermatologist_id=1&starts_at={first}",
            app.address
        ))
        .await
        .unwrap();
    wait_for_heading(&client, "Mesotherapy").await;
    for no in client
        .find_all(Locator::Css("input[type=radio][value=no]"))
        .await
        .unwrap()
    {
        no.click().await.unwrap();
    }
    client
        .find(Locator::Css("#sessions option[value='4']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (css, text) in [
        ("#name", "Carol Danvers"),
        ("#email", email.as_str()),
        ("#phone", "+44 7700 900789"),
        ("#date_of_birth", "01021980"),
    ] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    client
        .find(Locator::Css("#consent"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&client, "Review your booking").await;
    let sessions = client
        .find_all(Locator::Css("ol.sessions li"))
        .await
        .unwrap();
    let mut dates = Vec::new();
    for session in &sessions {
        dates.push(session.text().await.unwrap());
    }
    let expected: Vec<String> = (0..4)
        .map(|n| {
            (monday + chrono::Duration::days(14 * n))
                .format("%A %-d %B %Y at 10:00")
                .to_string()
        })
        .collect();
    assert_eq!(dates, expected, "four sessions, two weeks apart");
    check_page(&client, "13-course-review").await;
    client
        .find(Locator::Css("form[action$='/confirm'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/manage/")
        {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let booked = heading(&client).await;
    assert!(
        booked.contains("is booked") || booked.contains("we will review"),
        "{booked}"
    );
    client.close().await.unwrap();
}

#[actix_web::test]
async fn a_course_shows_its_sessions_before_confirming() {
    run_guarded(a_course_shows_every_session_before_it_is_confirmed()).await;
}

async fn a_patient_moves_a_booking_and_the_desk_keeps_the_calendar() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some((_driver, client)) = browser().await else {
        return;
    };
    let day = crate::fixtures::monday_ahead();
    let booked = app
        .book(&consultation(
            &crate::fixtures::at(day, 10, 0),
            "ada@example.com",
        ))
        .await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let token = booked.body["manage_token"].as_str().unwrap();

    // The patient moves it from the manage page, with the keyboard.
    client
        .goto(&format!("{}/manage/{token}", app.address))
        .await
        .unwrap();
    wait_for_heading(&client, "Your appointment").await;
    press(&client, "a[href$='/reschedule']", Key::Enter).await;
    wait_for_heading(&client, "choose a new time").await;
    check_page(&client, "20-reschedule-times").await;
    press(
        &client,
        "a[href*='reschedule?dermatologist_id=']",
        Key::Enter,
    )
    .await;
    wait_for_heading(&client, "Move your appointment?").await;
    check_page(&client, "21-reschedule-confirm").await;
    press(&client, "form button[type=submit]", Key::Enter).await;
    wait_for_heading(&client, "Your appointment is moved").await;
    check_page(&client, "22-rescheduled").await;
    let moved = app.manage(token).await;
    assert_ne!(
        moved.body["booking"]["starts_at"],
        crate::fixtures::at(day, 10, 0)
    );

    // The desk's pages for the calendar, the treatments and the emails.
    desk_sign_in(
        &client,
        &app,
        dermabook::demo::FRONT_DESK_EMAIL,
        dermabook::demo::FRONT_DESK_PASSWORD,
    )
    .await;
    wait_for_heading(&client, "20").await;
    press(&client, "a[href='/desk/calendar']", Key::Enter).await;
    wait_for_heading(&client, "Hours and time off").await;
    check_page(&client, "23-desk-calendar").await;
    type_into(&client, "#reason", "Training day").await;
    let from = format!("{day}T13:30");
    let until = format!("{day}T17:00");
    for (field, value) in [("#starts_at", &from), ("#ends_at", &until)] {
        // A datetime-local field takes its value in the page's own format; set it directly.
        client
            .execute(
                "document.querySelector(arguments[0]).value = arguments[1];",
                vec![json!(field), json!(value)],
            )
            .await
            .unwrap();
    }
    press(&client, "form[action$='/time-off'] button", Key::Enter).await;
    for _ in 0..100 {
        if client.source().await.unwrap().contains("Time off added") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(client.source().await.unwrap().contains("Training day"));
    check_page(&client, "24-desk-time-off-added").await;
    for (path, words, step) in [
        ("/desk/treatments", "Treatments", "25-desk-treatments"),
        ("/desk/treatments/1", "consultation", "26-desk-treatment"),
        ("/desk/emails?status=pending", "Emails", "27-desk-emails"),
    ] {
        client
            .goto(&format!("{}{path}", app.address))
            .await
            .unwrap();
        wait_for_heading(&client, words).await;
        check_page(&client, step).await;
    }
    client.close().await.unwrap();
}

#[actix_web::test]
async fn a_patient_moves_a_booking_and_the_desk_keeps_its_calendar() {
    run_guarded(a_patient_moves_a_booking_and_the_desk_keeps_the_calendar()).await;
}
