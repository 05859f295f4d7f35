//! The HTML pages of the endpoints: small, accessible, no JavaScript.
//! Replace them by implementing [`Pages`] (with any template engine) and
//! passing it to [`TotpAuthBuilder::pages`](super::TotpAuthBuilder::pages).

use std::fmt::Write as _;

use super::language::{Strings, fill};
use super::refusal::Refusal;

/// The second screen: choose the method, type the code.
#[derive(Debug)]
#[non_exhaustive]
pub struct SecondStepPage<'a> {
    /// Where the form posts (the prefix).
    pub action: &'a str,
    /// The user's display name.
    pub display_name: &'a str,
    /// An error from the last attempt.
    pub error: Option<&'a str>,
    /// The method to preselect: `totp` or `recovery`.
    pub method: &'a str,
    /// Whether to offer "remember this device".
    pub offer_remember: bool,
    /// The number of digits expected.
    pub digits: u8,
    /// The words of the request's language (`Accept-Language`), for
    /// pages that use them.
    pub strings: &'a Strings,
}

/// The "Sync Authenticator App" page.
#[derive(Debug)]
#[non_exhaustive]
pub struct EnrollPage<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The user's display name.
    pub display_name: &'a str,
    /// URL of the QR code PNG.
    pub qr_png_url: &'a str,
    /// URL of the QR code SVG.
    pub qr_svg_url: &'a str,
    /// The secret grouped for typing by hand. Shown only on this page.
    pub manual_key: &'a str,
    /// The same secret as one string (base32, no spaces), for copying into
    /// an app's key field: a grouped key pasted whole is refused by some
    /// apps. Shown only on this page.
    pub key: &'a str,
    /// The issuer shown in the app.
    pub issuer: &'a str,
    /// An error from the last attempt.
    pub error: Option<&'a str>,
    /// The number of digits expected.
    pub digits: u8,
    /// The words of the request's language (`Accept-Language`), for
    /// pages that use them.
    pub strings: &'a Strings,
}

/// New recovery codes, shown once.
#[derive(Debug)]
#[non_exhaustive]
pub struct RecoveryCodesPage<'a> {
    /// The codes.
    pub codes: &'a [&'a str],
    /// Where to go on.
    pub continue_url: &'a str,
    /// The words of the request's language (`Accept-Language`), for
    /// pages that use them.
    pub strings: &'a Strings,
}

/// One row of the authenticators page.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthenticatorRow<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
}

/// The user's authenticators, with re-sync and revoke buttons and a form
/// to add one. Each is a POST (re-sync: `replace` = the id, add: `name`, to
/// `{prefix}/enroll`), never a link: a GET never starts over an enrollment.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthenticatorsPage<'a> {
    /// The prefix, for form actions.
    pub prefix: &'a str,
    /// The authenticators.
    pub rows: &'a [AuthenticatorRow<'a>],
    /// Unused recovery codes left.
    pub recovery_codes_left: usize,
    /// The words of the request's language (`Accept-Language`), for
    /// pages that use them.
    pub strings: &'a Strings,
}

/// The enrollment grace period: how long is left, "Sync now" or "Later".
#[derive(Debug)]
#[non_exhaustive]
pub struct GracePage<'a> {
    /// The user's display name.
    pub display_name: &'a str,
    /// How long is left, in words ("6 days", "5 hours", "12 minutes").
    pub left: &'a str,
    /// When the period ends, RFC 3339 (UTC).
    pub until: &'a str,
    /// "Sync now": the enrollment page (`{prefix}/enroll`).
    pub enroll_url: &'a str,
    /// "Later": into the application.
    pub later_url: &'a str,
    /// The words, in the request's language (see [`Pages::uses_languages`]).
    pub strings: &'a Strings,
}

/// Renders the endpoints' pages. Every string passed in is raw text: escape
/// it (see [`escape`]).
pub trait Pages: Send + Sync + 'static {
    /// The second screen.
    fn second_step(&self, page: &SecondStepPage<'_>) -> String;
    /// The enrollment page.
    fn enroll(&self, page: &EnrollPage<'_>) -> String;
    /// The recovery codes, shown once.
    fn recovery_codes(&self, page: &RecoveryCodesPage<'_>) -> String;
    /// The list of authenticators.
    fn authenticators(&self, page: &AuthenticatorsPage<'_>) -> String;
    /// A refusal as a page.
    fn message(&self, refusal: &Refusal) -> String;
    /// The enrollment grace period page. The default is the default look's
    /// (so pages written before it keep compiling).
    fn grace(&self, page: &GracePage<'_>) -> String {
        default_grace(page)
    }
    /// Whether these pages take their words from the [`Strings`] tables.
    /// When not (the default), every page gets the English table, so that
    /// a refusal's sentence is in the language of the rest of the page.
    fn uses_languages(&self) -> bool {
        false
    }
    /// A refusal as a page in the request's language; pages that have one
    /// language leave it to [`Pages::message`].
    fn message_in(&self, refusal: &Refusal, strings: &Strings) -> String {
        let _ = strings;
        self.message(refusal)
    }
}

/// The default look's grace page: links, not forms, because neither
/// choice changes anything (a GET of the enrollment page starts one).
fn default_grace(p: &GracePage<'_>) -> String {
    let t = p.strings;
    let until = escape(p.until);
    let text = fill(&escape(t.grace_text), "name", &escape(p.display_name));
    let text = fill(
        &text,
        "left",
        &format!("<strong id=\"grace-left\">{}</strong>", escape(p.left)),
    );
    let text = fill(
        &text,
        "until",
        &format!("<time datetime=\"{until}\">{until}</time>"),
    );
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><p><a id=\"sync-now\" href=\"{enroll}\">{sync}</a></p><p><a id=\"later\" href=\"{later}\">{later_text}</a></p>",
        title = escape(t.grace_title),
        enroll = escape(p.enroll_url),
        sync = escape(t.grace_sync_now),
        later = escape(p.later_url),
        later_text = escape(t.grace_later),
    );
    layout(t.lang, t.grace_title, &body)
}

/// The default look: one column, system fonts, good contrast.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPages;

/// HTML-escape `text` for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
h1{font-size:1.35rem;margin-top:0}label{display:block;font-weight:600;margin:1rem 0 .35rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;font-size:1.2rem;padding:.55rem;border:1px solid #98a2b3;border-radius:6px}\
input.code{letter-spacing:.2em;font-family:ui-monospace,monospace}\
button{margin-top:1.2rem;background:#1f5fbf;color:#fff;border:0;border-radius:6px;padding:.65rem 1.4rem;font-size:1rem;cursor:pointer}\
button.link{background:none;color:#b42318;padding:0;margin:0}\
fieldset{border:0;padding:0;margin:0}legend{font-weight:600}\
.error{background:#fdecea;color:#8a1c13;padding:.7rem;border-radius:6px}\
.key{font-family:ui-monospace,monospace;font-size:1.05rem;background:#f0f2f5;padding:.4rem;border-radius:4px;word-break:break-all}\
ol.codes{font-family:ui-monospace,monospace;font-size:1.1rem}.qr{display:block;margin:1rem auto;width:240px;height:240px}";

fn layout(lang: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
        lang = escape(lang),
    )
}

fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default()
}

impl Pages for DefaultPages {
    fn second_step(&self, p: &SecondStepPage<'_>) -> String {
        let t = p.strings;
        let checked = |m: &str| if p.method == m { " checked" } else { "" };
        let remember = if p.offer_remember {
            format!(
                "<label><input type=\"checkbox\" name=\"remember\" value=\"on\"> {}</label>",
                escape(t.remember_device)
            )
        } else {
            String::new()
        };
        let digits = p.digits.to_string();
        let body = format!(
            "<h1>{title}</h1>\
<p>{signed_in}</p>{error}\
<form method=\"post\" action=\"{action}\">\
<fieldset><legend>{legend}</legend>\
<label><input type=\"radio\" name=\"method\" value=\"totp\" id=\"method-totp\"{c1}> {totp}</label>\
<label><input type=\"radio\" name=\"method\" value=\"recovery\" id=\"method-recovery\"{c2}> {recovery}</label>\
</fieldset>\
<label for=\"code\">{code_label}</label>\
<input type=\"text\" class=\"code\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
autofocus required maxlength=\"64\" aria-describedby=\"code-help\">\
<p id=\"code-help\">{help}</p>\
{remember}<button type=\"submit\" id=\"submit\">{submit}</button></form>",
            title = escape(t.second_step_title),
            signed_in = fill(&escape(t.signed_in_as), "name", &escape(p.display_name)),
            error = error_box(p.error),
            action = escape(p.action),
            legend = escape(t.method_legend),
            c1 = checked("totp"),
            c2 = checked("recovery"),
            totp = escape(t.method_totp),
            recovery = escape(t.method_recovery),
            code_label = escape(t.code_label),
            help = escape(&fill(t.code_help, "digits", &digits)),
            submit = escape(t.submit),
        );
        layout(t.lang, t.second_step_title, &body)
    }

    fn enroll(&self, p: &EnrollPage<'_>) -> String {
        let t = p.strings;
        let digits = p.digits.to_string();
        let body = format!(
            "<h1>{title}</h1>\
<nav aria-label=\"{nav}\"><strong>{nav_current}</strong></nav>\
<p>{intro}</p>{error}\
<img class=\"qr\" id=\"qr\" src=\"{png}\" alt=\"{alt}\" width=\"240\" height=\"240\">\
<p>{manual} <span class=\"key\" id=\"manual-key\">{key}</span></p>\
<p><label for=\"key-copy\">{copy_label}</label> \
<input type=\"text\" class=\"key\" id=\"key-copy\" value=\"{copy}\" readonly autocomplete=\"off\" spellcheck=\"false\"></p>\
<p><a href=\"{svg}\">{svg_link}</a></p>\
<form method=\"post\" action=\"{action}\">\
<label for=\"code\">{code_label}</label>\
<input type=\"text\" class=\"code\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required maxlength=\"64\" \
aria-describedby=\"code-help\">\
<p id=\"code-help\">{help}</p>\
<button type=\"submit\" id=\"submit\">{submit}</button></form>",
            title = escape(t.enroll_title),
            nav = escape(t.enroll_nav_label),
            nav_current = escape(t.enroll_nav_current),
            intro = fill(&escape(t.enroll_intro), "name", &escape(p.display_name)),
            error = error_box(p.error),
            png = escape(p.qr_png_url),
            alt = fill(&escape(t.qr_alt), "issuer", &escape(p.issuer)),
            manual = escape(t.manual_key),
            key = escape(p.manual_key),
            copy_label = escape(t.key_copy_label),
            copy = escape(p.key),
            svg = escape(p.qr_svg_url),
            svg_link = escape(t.qr_svg_link),
            action = escape(p.action),
            code_label = escape(t.code_label),
            help = escape(&fill(t.enroll_code_help, "digits", &digits)),
            submit = escape(t.submit),
        );
        layout(t.lang, t.enroll_title, &body)
    }

    fn recovery_codes(&self, p: &RecoveryCodesPage<'_>) -> String {
        let t = p.strings;
        let mut list = String::new();
        for c in p.codes {
            let _ = write!(list, "<li>{}</li>", escape(c));
        }
        let body = format!(
            "<h1>{title}</h1><p>{intro}</p>\
<ol class=\"codes\" id=\"recovery-codes\">{list}</ol>\
<p><a href=\"{url}\" id=\"continue\">{cont}</a></p>",
            title = escape(t.recovery_title),
            intro = escape(t.recovery_intro),
            url = escape(p.continue_url),
            cont = escape(t.continue_link),
        );
        layout(t.lang, t.recovery_title, &body)
    }

    fn authenticators(&self, p: &AuthenticatorsPage<'_>) -> String {
        let t = p.strings;
        let mut rows = String::new();
        for r in p.rows {
            let _ = write!(
                rows,
                "<li>{name} <form method=\"post\" action=\"{prefix}/enroll\" style=\"display:inline\">\
<input type=\"hidden\" name=\"replace\" value=\"{id}\"><button class=\"link\" type=\"submit\">{resync}</button></form> \
<form method=\"post\" action=\"{prefix}/authenticators/{id}/revoke\" style=\"display:inline\">\
<button class=\"link\" type=\"submit\">{revoke}</button></form></li>",
                name = escape(r.name),
                prefix = escape(p.prefix),
                id = escape(r.id),
                resync = escape(t.resync),
                revoke = escape(t.revoke),
            );
        }
        let body = format!(
            "<h1>{title}</h1><ul id=\"authenticators\">{rows}</ul>\
<form method=\"post\" action=\"{prefix}/enroll\"><label for=\"new-name\">{add_label}</label>\
<input type=\"text\" id=\"new-name\" name=\"name\" maxlength=\"64\" placeholder=\"{placeholder}\">\
<button type=\"submit\">{add}</button></form>\
<p>{left}</p>\
<form method=\"post\" action=\"{prefix}/recovery-codes\"><button type=\"submit\">{new_codes}</button></form>",
            title = escape(t.authenticators_title),
            prefix = escape(p.prefix),
            add_label = escape(t.add_label),
            placeholder = escape(t.add_placeholder),
            add = escape(t.add_button),
            left = escape(&fill(
                t.codes_left,
                "left",
                &p.recovery_codes_left.to_string()
            )),
            new_codes = escape(t.new_codes),
        );
        layout(t.lang, t.authenticators_title, &body)
    }

    fn message(&self, refusal: &Refusal) -> String {
        self.message_in(refusal, &Strings::ENGLISH)
    }

    fn uses_languages(&self) -> bool {
        true
    }

    fn message_in(&self, refusal: &Refusal, t: &Strings) -> String {
        let body = format!(
            "<h1>{title}</h1><p class=\"error\" role=\"alert\">{detail}</p><p><a href=\"/\">{home}</a></p>",
            title = escape(t.message_heading),
            detail = escape(t.refusal(refusal.reason)),
            home = escape(t.home_link),
        );
        layout(t.lang, t.message_heading, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn re_sync_and_add_are_posts_to_the_enroll_route() {
        let html = DefaultPages.authenticators(&AuthenticatorsPage {
            prefix: "/2fa",
            rows: &[AuthenticatorRow {
                id: "a\"b",
                name: "Phone",
            }],
            recovery_codes_left: 10,
            strings: &Strings::ENGLISH,
        });
        assert!(!html.contains("enroll?"), "{html}");
        assert_eq!(
            html.matches("<form method=\"post\" action=\"/2fa/enroll\">")
                .count()
                + html
                    .matches("<form method=\"post\" action=\"/2fa/enroll\" style")
                    .count(),
            2,
            "{html}"
        );
        assert!(
            html.contains("name=\"replace\" value=\"a&quot;b\""),
            "{html}"
        );
        assert!(html.contains("name=\"name\""), "{html}");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = DefaultPages.second_step(&SecondStepPage {
            action: "/2fa",
            display_name: "<script>",
            error: Some("bad & wrong"),
            method: "totp",
            offer_remember: true,
            digits: 6,
            strings: &Strings::ENGLISH,
        });
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("Two Factor Authorization Code"));
        assert!(html.contains("Remember this device"));
    }
}
