//! The default pages in the request's language: `Accept-Language` picks the
//! table (q-values honoured, English the fallback), a service adds its own,
//! and `<html lang>` says which one was used.
//!
//! In process, over the test kit's reference app with the default pages.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use tower_totp::UserKind;
use tower_totp::http::Strings;
use tower_totp_testkit::app::{App, Client, Reply};
use tower_totp_testkit::phone::Phone;

/// A browser request with `Accept-Language: lang` (none when empty).
async fn send(b: &mut Client, method: Method, path: &str, lang: &str, form: &str) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ACCEPT, "text/html");
    if !lang.is_empty() {
        req = req.header(header::ACCEPT_LANGUAGE, lang);
    }
    if !form.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    b.send(req.body(Full::new(Bytes::from(form.to_owned()))).unwrap())
        .await
}

/// Every default page, in the language `lang` asks for: the second step,
/// a refused code on it, the enrollment page and its refusal, the recovery
/// codes, the authenticators and a refusal page.
async fn all_pages(app: &App, lang: &str) -> Vec<(&'static str, String)> {
    let mut pages = Vec::new();
    // Enrollment, forced.
    let bob = app.user(&format!("bob-{}", lang.len()), UserKind::Internal, true);
    let mut b = app.browser();
    b.login(&bob).await;
    let r = send(&mut b, Method::GET, "/2fa/enroll", lang, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    pages.push(("enroll", r.text()));
    let r = send(&mut b, Method::POST, "/2fa/enroll", lang, "code=000000").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    pages.push(("enroll refused", r.text()));

    // The second step of an enrolled user, a wrong code, then in.
    let ann = app.user(&format!("ann-{}", lang.len()), UserKind::Internal, true);
    let phone: Phone = app.enroll_directly(&ann).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&ann).await;
    let r = send(&mut b, Method::GET, "/2fa", lang, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    pages.push(("second step", r.text()));
    let r = send(
        &mut b,
        Method::POST,
        "/2fa",
        lang,
        "method=totp&code=000000",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    pages.push(("second step refused", r.text()));
    let r = send(
        &mut b,
        Method::POST,
        "/2fa",
        lang,
        &format!("method=totp&code={}", phone.code()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
    let r = send(&mut b, Method::GET, "/2fa/authenticators", lang, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    pages.push(("authenticators", r.text()));
    let r = send(&mut b, Method::POST, "/2fa/recovery-codes", lang, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    pages.push(("recovery codes", r.text()));
    let r = send(&mut b, Method::GET, "/2fa/no-such-page", lang, "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    pages.push(("refusal", r.text()));
    pages
}

fn assert_german(pages: &[(&str, String)]) {
    for (name, html) in pages {
        assert!(
            html.starts_with("<!doctype html><html lang=\"de\">"),
            "{name}: {html}"
        );
    }
    let expect = [
        ("enroll", "Authenticator-App synchronisieren"),
        ("enroll", "Zwei-Faktor-Authentifizierungscode"),
        ("enroll", "Absenden"),
        ("enroll refused", "Dieser Code ist ungültig"),
        ("second step", "Zwei-Faktor-Authentifizierung"),
        ("second step", "Wiederherstellungscode"),
        ("second step", "Der 6-stellige Code"),
        ("second step refused", "Dieser Code ist ungültig"),
        ("authenticators", "Neu synchronisieren"),
        ("authenticators", "10 unbenutzte Wiederherstellungscodes."),
        ("recovery codes", "Ihre Wiederherstellungscodes"),
        ("refusal", "Diese Seite gibt es nicht."),
    ];
    for (name, text) in expect {
        let html = &pages.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(html.contains(text), "{name} lacks {text:?}: {html}");
    }
    for (name, html) in pages {
        for english in [
            "Submit",
            "Two Factor Authorization Code",
            "That code is not valid",
        ] {
            assert!(!html.contains(english), "{name} has {english:?}: {html}");
        }
    }
}

fn assert_english(pages: &[(&str, String)]) {
    for (name, html) in pages {
        assert!(
            html.starts_with("<!doctype html><html lang=\"en\">"),
            "{name}: {html}"
        );
    }
    let refused = &pages
        .iter()
        .find(|(n, _)| *n == "second step refused")
        .unwrap()
        .1;
    assert!(refused.contains("That code is not valid"), "{refused}");
    let step = &pages.iter().find(|(n, _)| *n == "second step").unwrap().1;
    assert!(step.contains("Two Factor Authorization Code"), "{step}");
}

#[tokio::test]
async fn german_for_de_on_every_default_page() {
    let app = App::new();
    assert_german(&all_pages(&app, "de").await);
}

#[tokio::test]
async fn q_values_choose_german_over_english() {
    let app = App::new();
    assert_german(&all_pages(&app, "de-CH;q=0.9, en;q=0.8").await);
    assert_german(&all_pages(&app, "en;q=0.3, fr, de;q=0.5").await);
}

#[tokio::test]
async fn unknown_or_no_language_is_english() {
    let app = App::new();
    assert_english(&all_pages(&app, "fr").await);
    assert_english(&all_pages(&app, "").await);
    assert_english(&all_pages(&app, "de;q=0").await);
}

#[tokio::test]
async fn a_service_adds_its_own_table() {
    const FRENCH: Strings = Strings {
        lang: "fr",
        submit: "Valider",
        code_label: "Code d'authentification à deux facteurs",
        code_invalid: "Ce code n'est pas valide.",
        ..Strings::ENGLISH
    };
    let app = App::setup().auth(|a| a.language("fr", FRENCH)).build();
    let pages = all_pages(&app, "fr-FR, en;q=0.5").await;
    for (name, html) in &pages {
        assert!(
            html.starts_with("<!doctype html><html lang=\"fr\">"),
            "{name}"
        );
    }
    let step = &pages.iter().find(|(n, _)| *n == "second step").unwrap().1;
    assert!(step.contains("Valider"), "{step}");
    assert!(step.contains("Code d&#39;authentification"), "{step}");
    let refused = &pages
        .iter()
        .find(|(n, _)| *n == "second step refused")
        .unwrap()
        .1;
    assert!(
        refused.contains("Ce code n&#39;est pas valide."),
        "{refused}"
    );
    // German is still there beside it.
    assert_german(&all_pages(&app, "de").await);
}

/// Pages in one language (the `Pages` default) get English sentences even
/// for `de`: a German error inside an English page would be worse.
#[tokio::test]
async fn one_language_pages_keep_english_refusals() {
    use tower_totp::http::Refusal;
    use tower_totp::http::pages::{
        AuthenticatorsPage, DefaultPages, EnrollPage, Pages, RecoveryCodesPage, SecondStepPage,
    };
    struct English;
    impl Pages for English {
        fn second_step(&self, p: &SecondStepPage<'_>) -> String {
            format!("error={:?} lang={}", p.error, p.strings.lang)
        }
        fn enroll(&self, p: &EnrollPage<'_>) -> String {
            DefaultPages.enroll(p)
        }
        fn recovery_codes(&self, p: &RecoveryCodesPage<'_>) -> String {
            DefaultPages.recovery_codes(p)
        }
        fn authenticators(&self, p: &AuthenticatorsPage<'_>) -> String {
            DefaultPages.authenticators(p)
        }
        fn message(&self, r: &Refusal) -> String {
            DefaultPages.message(r)
        }
    }
    let app = App::setup().auth(|a| a.pages(English)).build();
    let ann = app.user("ann", UserKind::Internal, true);
    app.enroll_directly(&ann).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&ann).await;
    let r = send(
        &mut b,
        Method::POST,
        "/2fa",
        "de",
        "method=totp&code=000000",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("That code is not valid"), "{}", r.text());
    assert!(r.text().contains("lang=en"), "{}", r.text());
}

/// The enrollment grace period's page, in German: its sentence, links and
/// how long is left.
#[tokio::test]
async fn the_grace_page_is_in_german_too() {
    let app = App::new();
    app.auth.policy().set(tower_totp::policy::PolicySettings {
        grace_days: 3,
        ..app.auth.policy().get()
    });
    let ann = app.user("ann", UserKind::Internal, true);
    let mut b = app.browser();
    b.login(&ann).await;
    let page = send(&mut b, Method::GET, "/2fa/grace", "de", "").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text();
    for german in [
        "lang=\"de\"",
        "Authenticator-App synchronisieren",
        "Jetzt synchronisieren",
        "Später",
        "3 Tage",
        "nur mit Ihrem Passwort",
    ] {
        assert!(html.contains(german), "{german} missing in {html}");
    }
    assert!(!html.contains("Sync now"), "{html}");
    let english = send(&mut b, Method::GET, "/2fa/grace", "en", "")
        .await
        .text();
    assert!(
        english.contains("Sync now") && english.contains("3 days"),
        "{english}"
    );
}
