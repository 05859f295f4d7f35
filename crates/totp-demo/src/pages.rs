//! The demo's HTML: the login page, the home page with the user menu, the
//! admin forms, and [`DemoPages`], the look of the library's `/2fa` pages
//! (second screen, "Sync Authenticator App", recovery codes).
//!
//! Plain server-rendered HTML: labelled fields, one `h1` per page, errors
//! announced with `role="alert"`, menus as `<details>`; no JavaScript.
//! Every string from outside is escaped.

use std::fmt::Write as _;

use tower_totp::UserKind;
use tower_totp::http::Refusal;
use tower_totp::http::pages::{
    AuthenticatorsPage, EnrollPage, GracePage, Pages, RecoveryCodesPage, SecondStepPage, escape,
};
use tower_totp::policy::PolicySettings;

use crate::users::User;

/// The product name in the top bar and page titles.
pub(crate) const PRODUCT: &str = "Tower TOTP Demo";

const STYLE: &str = "\
:root{--ink:#1b2430;--muted:#5a6472;--line:#d5dae1;--brand:#1d4f91;--brand-dark:#163d70;--bg:#eef1f5;--ok:#0f6b3a;--bad:#9b1c1c}\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:var(--bg)}\
a{color:var(--brand)}a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #f0b429;outline-offset:2px}\
.topbar{display:flex;align-items:center;gap:1.5rem;background:var(--brand);color:#fff;padding:.6rem 1.5rem}\
.topbar .product{font-weight:700;color:#fff;text-decoration:none;font-size:1.1rem}\
.topbar nav ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0}.topbar nav a{color:#fff}\
.spacer{flex:1}\
.user-menu{position:relative}.user-menu summary{cursor:pointer;list-style:none;padding:.3rem .7rem;border:1px solid rgba(255,255,255,.5);border-radius:6px}\
.user-menu summary::after{content:' \\25BE'}.user-menu summary::-webkit-details-marker{display:none}\
.user-menu ul{position:absolute;right:0;margin:.4rem 0 0;padding:.4rem 0;list-style:none;background:#fff;border:1px solid var(--line);border-radius:8px;box-shadow:0 6px 20px rgba(0,0,0,.15);min-width:14rem;z-index:1}\
.user-menu li a,.user-menu li button{display:block;width:100%;text-align:left;padding:.45rem 1rem;color:var(--ink);text-decoration:none;background:none;border:0;font:inherit;cursor:pointer;margin:0}\
.user-menu li a:hover,.user-menu li button:hover{background:var(--bg)}\
main{max-width:40rem;margin:2.5rem auto;padding:0 1rem}\
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:1.75rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.05)}\
.narrow{max-width:26rem;margin:0 auto}\
h1{font-size:1.45rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\
label{font-weight:600}\
.field{margin:1rem 0}.field label{display:block;margin-bottom:.3rem}\
input[type=text],input[type=password],input[type=number]{width:100%;font-size:1.05rem;padding:.5rem .6rem;border:1px solid #8a94a3;border-radius:6px}\
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;letter-spacing:.15em;font-size:1.25rem}\
.check{display:flex;align-items:center;gap:.5rem;margin:.6rem 0}.check label{font-weight:400}\
fieldset{border:1px solid var(--line);border-radius:8px;padding:.6rem 1rem 1rem;margin:1rem 0}legend{font-weight:600;padding:0 .3rem}\
.onoff{display:flex;gap:1.5rem}.onoff label{font-weight:400}\
button{background:var(--brand);color:#fff;border:0;border-radius:6px;padding:.6rem 1.4rem;font:inherit;cursor:pointer;margin-top:.5rem}\
button:hover{background:var(--brand-dark)}button.secondary{background:none;color:var(--brand);border:1px solid var(--brand)}\
.hint{color:var(--muted);font-size:.9rem;margin:.3rem 0 0}\
.alert{background:#fdecec;color:var(--bad);border:1px solid #f3c1c1;padding:.6rem .8rem;border-radius:6px}\
.notice{background:#e8f5ee;color:var(--ok);border:1px solid #b9e0c9;padding:.6rem .8rem;border-radius:6px}\
.tabs ul{display:flex;gap:.25rem;list-style:none;margin:0 0 1.25rem;padding:0;border-bottom:2px solid var(--line)}\
.tabs a{display:block;padding:.45rem 1rem;text-decoration:none;color:var(--muted);border-bottom:3px solid transparent;margin-bottom:-2px}\
.tabs a[aria-current=page]{color:var(--brand);border-color:var(--brand);font-weight:600}\
.qr{display:block;margin:1rem auto;width:240px;height:240px;image-rendering:pixelated;border:1px solid var(--line)}\
.key{font-family:ui-monospace,monospace;background:var(--bg);padding:.15rem .4rem;border-radius:4px;word-break:break-all}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line)}th{font-size:.85rem;color:var(--muted)}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}\
ol.codes{font-family:ui-monospace,monospace;font-size:1.1rem;columns:2;column-gap:3rem}ol.codes li{white-space:nowrap}\
.actions{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;margin-top:.75rem}.actions button{margin-top:0}";

/// Which part of the top bar is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Home,
    Admin,
    None,
}

fn top_bar(user: Option<&User>, section: Section) -> String {
    let Some(user) = user else {
        return format!(
            "<header class=\"topbar\"><a class=\"product\" href=\"/\">{PRODUCT}</a></header>"
        );
    };
    let current = |s: Section| {
        if s == section {
            " aria-current=\"page\""
        } else {
            ""
        }
    };
    let admin = if user.is_admin {
        format!(
            "<li><a href=\"/admin/settings\"{}>Administration</a></li>",
            current(Section::Admin)
        )
    } else {
        String::new()
    };
    format!(
        "<header class=\"topbar\"><a class=\"product\" href=\"/\">{PRODUCT}</a>\
<nav aria-label=\"Main\"><ul><li><a href=\"/\"{home}>Home</a></li>{admin}</ul></nav>\
<span class=\"spacer\"></span>\
<details class=\"user-menu\" id=\"user-menu\"><summary>{name}</summary><ul>\
<li><a href=\"/2fa/enroll\" id=\"sync-authenticator\">Sync Authenticator App</a></li>\
<li><a href=\"/2fa/authenticators\">Authenticators</a></li>\
<li><form method=\"post\" action=\"/logout\"><button type=\"submit\" id=\"logout\">Log out</button></form></li>\
</ul></details></header>",
        home = current(Section::Home),
        name = escape(&user.display_name),
    )
}

fn layout(title: &str, user: Option<&User>, section: Section, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · {PRODUCT}</title><style>{STYLE}</style></head>\
<body>{bar}<main>{body}</main></body></html>",
        title = escape(title),
        bar = top_bar(user, section),
    )
}

fn alert(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                "<p class=\"alert\" role=\"alert\" id=\"error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default()
}

fn notice(text: Option<&str>) -> String {
    text.map(|t| {
        format!(
            "<p class=\"notice\" role=\"status\" id=\"notice\">{}</p>",
            escape(t)
        )
    })
    .unwrap_or_default()
}

const LOGOUT_BUTTON: &str = "<form method=\"post\" action=\"/logout\">\
<button type=\"submit\" class=\"secondary\" id=\"cancel\">Cancel and log out</button></form>";

/// The login page: user name, password, Submit.
pub(crate) fn login_page(error: Option<&str>, username: &str) -> String {
    let autofocus_user = if username.is_empty() {
        " autofocus"
    } else {
        ""
    };
    let autofocus_pw = if username.is_empty() {
        ""
    } else {
        " autofocus"
    };
    let body = format!(
        "<div class=\"card narrow\"><h1>Log in</h1>{error}\
<form method=\"post\" action=\"/login\">\
<div class=\"field\"><label for=\"username\">User name</label>\
<input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" required maxlength=\"64\"{autofocus_user}></div>\
<div class=\"field\"><label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required maxlength=\"1024\"{autofocus_pw}></div>\
<button type=\"submit\" id=\"submit\">Submit</button></form></div>",
        error = alert(error),
        username = escape(username),
    );
    layout("Log in", None, Section::None, &body)
}

/// The home page; `clock_hint` is the sentence of the
/// [`ClockHint`](tower_totp::http::ClockHint) the last code left, shown once.
/// The security side of the home page.
pub(crate) struct Activity<'a> {
    /// The newest events, newest first.
    pub(crate) entries: &'a [crate::activity::Entry],
    /// `Some(left)` when so few recovery codes are left that the user
    /// should make new ones.
    pub(crate) few_recovery_codes: Option<usize>,
}

/// The warning about few recovery codes, and the "Security activity" list.
fn activity_section(a: &Activity<'_>) -> String {
    let warning = a
        .few_recovery_codes
        .map(|left| {
            let codes = if left == 1 { "code" } else { "codes" };
            format!(
                "<p class=\"alert\" role=\"status\" id=\"few-recovery-codes\">\
You have {left} unused recovery {codes} left. \
<a href=\"/2fa/authenticators\" id=\"new-recovery-codes\">Make new recovery codes</a></p>"
            )
        })
        .unwrap_or_default();
    let list = if a.entries.is_empty() {
        "<p id=\"no-activity\">Nothing yet.</p>".to_owned()
    } else {
        let items: String = a
            .entries
            .iter()
            .map(|e| {
                format!(
                    "<li data-kind=\"{kind}\"><time datetime=\"{at}\">{shown}</time> {detail}</li>",
                    kind = escape(&e.kind),
                    at = escape(&e.at),
                    shown = escape(&e.at.replace('T', " ").replace('Z', " UTC")),
                    detail = escape(&e.detail),
                )
            })
            .collect();
        format!("<ol class=\"activity\" id=\"activity\">{items}</ol>")
    };
    format!(
        "{warning}<section aria-labelledby=\"activity-title\">\
<h2 id=\"activity-title\">Security activity</h2>{list}</section>"
    )
}

pub(crate) fn home_page(
    user: &User,
    second_factor: &str,
    clock_hint: Option<&str>,
    activity: &Activity<'_>,
) -> String {
    let kind = match user.kind {
        UserKind::Internal => "internal user",
        UserKind::External => "external user",
        _ => "user",
    };
    let body = format!(
        "<div class=\"card\"><h1 id=\"welcome\">Welcome, {name}</h1>{hint}\
<dl class=\"facts\"><dt>User name</dt><dd>{username}</dd><dt>Account</dt><dd>{kind}{admin}</dd>\
<dt>Second factor</dt><dd id=\"second-factor\">{second_factor}</dd></dl>\
<p>To set up or replace your authenticator app, open the menu under your name \
({name}) and choose <strong>Sync Authenticator App</strong>.</p>{activity}</div>",
        name = escape(&user.display_name),
        username = escape(&user.username),
        admin = if user.is_admin { ", administrator" } else { "" },
        second_factor = escape(second_factor),
        hint = clock_hint
            .map(|h| format!(
                "<p class=\"notice\" role=\"status\" id=\"clock-hint\">{}</p>",
                escape(h)
            ))
            .unwrap_or_default(),
        activity = activity_section(activity),
    );
    layout("Home", Some(user), Section::Home, &body)
}

fn admin_tabs(current: &str) -> String {
    let tab = |href: &str, label: &str| {
        let cur = if label == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<li><a href=\"{href}\"{cur}>{label}</a></li>")
    };
    format!(
        "<nav class=\"tabs\" aria-label=\"Administration\"><ul>{}{}</ul></nav>",
        tab("/admin/settings", "Two Factor Auth"),
        tab("/admin/users", "Users"),
    )
}

fn on_off(name: &str, label: &str, on: bool) -> String {
    let (on_checked, off_checked) = if on {
        (" checked", "")
    } else {
        ("", " checked")
    };
    format!(
        "<fieldset><legend>{label}</legend><div class=\"onoff\">\
<label><input type=\"radio\" name=\"{name}\" value=\"on\" id=\"{name}-on\"{on_checked}> ON</label>\
<label><input type=\"radio\" name=\"{name}\" value=\"off\" id=\"{name}-off\"{off_checked}> OFF</label>\
</div></fieldset>"
    )
}

/// The API Settings form, "Two Factor Auth" tab.
pub(crate) fn settings_page(admin: &User, s: PolicySettings, saved: bool) -> String {
    let body = format!(
        "<div class=\"card\"><h1>API Settings</h1>{tabs}{saved}\
<form method=\"post\" action=\"/admin/settings\">\
<div class=\"check\"><input type=\"checkbox\" id=\"enabled\" name=\"enabled\" value=\"on\"{enabled}>\
<label for=\"enabled\">Enable TOTP 2FA</label></div>\
<p class=\"hint\">Off: nobody is asked for a code, whatever the settings below.</p>\
{internal}{external}\
<p class=\"hint\">Users of a kind that is ON are asked for a code once they have synced an app; \
those whose user form has <em>Require Two Factor Authentication</em> must sync one at their next login.</p>\
<div class=\"field\"><label for=\"grace_days\">Grace period (days)</label>\
<input type=\"number\" id=\"grace_days\" name=\"grace_days\" min=\"0\" max=\"{max_days}\" step=\"1\" \
inputmode=\"numeric\" value=\"{grace_days}\" aria-describedby=\"grace-hint\"></div>\
<p class=\"hint\" id=\"grace-hint\">Users who must sync an app may still log in with the password alone \
for this many days from their first such login, and are asked each time to sync now or later. \
Such a login has no second factor. 0: sync at once.</p>\
<button type=\"submit\" id=\"save\">Save</button></form></div>",
        tabs = admin_tabs("Two Factor Auth"),
        saved = notice(saved.then_some("Saved. The change applies from the next request.")),
        enabled = if s.enabled { " checked" } else { "" },
        internal = on_off("internal_users", "TFA for Internal Users", s.internal_users),
        external = on_off("external_users", "TFA for External Users", s.external_users),
        grace_days = s.grace_days,
        max_days = crate::settings::MAX_GRACE_DAYS,
    );
    layout("Two Factor Auth", Some(admin), Section::Admin, &body)
}

fn kind_label(kind: UserKind) -> &'static str {
    match kind {
        UserKind::Internal => "Internal",
        UserKind::External => "External",
        _ => "Other",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// The list of users.
pub(crate) fn users_page(admin: &User, rows: &[(std::sync::Arc<User>, bool)]) -> String {
    let mut list = String::new();
    for (u, enrolled) in rows {
        let _ = write!(
            list,
            "<tr><td><a href=\"/admin/users/{path}\">{name}</a></td><td>{display}</td><td>{kind}</td>\
<td>{admin}</td><td>{require}</td><td>{enrolled}</td></tr>",
            path = escape(&u.username),
            name = escape(&u.username),
            display = escape(&u.display_name),
            kind = kind_label(u.kind),
            admin = yes_no(u.is_admin),
            require = yes_no(u.require_2fa),
            enrolled = yes_no(*enrolled),
        );
    }
    let body = format!(
        "<div class=\"card\"><h1>Users</h1>{tabs}\
<table><thead><tr><th scope=\"col\">User ID</th><th scope=\"col\">Name</th><th scope=\"col\">Type</th>\
<th scope=\"col\">Admin</th><th scope=\"col\">Require 2FA</th><th scope=\"col\">App synced</th></tr></thead>\
<tbody>{list}</tbody></table></div>",
        tabs = admin_tabs("Users"),
    );
    layout("Users", Some(admin), Section::Admin, &body)
}

/// What the User ID page says after a form post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserNotice {
    None,
    Saved,
    Reset,
}

impl UserNotice {
    /// From the query the form's redirect carries (`?saved=1`, `?reset=1`).
    pub(crate) fn from_query(saved: bool, reset: bool) -> Self {
        match (reset, saved) {
            (true, _) => Self::Reset,
            (false, true) => Self::Saved,
            (false, false) => Self::None,
        }
    }

    fn text(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Saved => Some("Saved. The change applies from the next request."),
            Self::Reset => Some(
                "Two factor authentication was reset: the user's apps and recovery codes \
                 are removed and their sessions ended.",
            ),
        }
    }
}

/// The User ID form with "Require Two Factor Authentication", and the
/// "Reset Two Factor Authentication" button (its own form, which leaves
/// the flag alone).
pub(crate) fn user_page(admin: &User, u: &User, enrolled: bool, shown: UserNotice) -> String {
    let body = format!(
        "<div class=\"card\"><h1>User ID: {name}</h1>{tabs}{saved}\
<dl class=\"facts\"><dt>Name</dt><dd>{display}</dd><dt>Type</dt><dd>{kind}</dd>\
<dt>Administrator</dt><dd>{admin_flag}</dd><dt>Authenticator app synced</dt><dd id=\"enrolled\">{enrolled}</dd></dl>\
<form method=\"post\" action=\"/admin/users/{path}\">\
<div class=\"check\"><input type=\"checkbox\" id=\"require_2fa\" name=\"require_2fa\" value=\"on\"{checked}>\
<label for=\"require_2fa\">Require Two Factor Authentication</label></div>\
<p class=\"hint\">The user must sync an authenticator app at the next login \
(when TFA is ON for {kind_lower} users).</p>\
<div class=\"actions\"><button type=\"submit\" id=\"save\">Save</button><a href=\"/admin/users\">Back to users</a></div>\
</form>\
<h2>Lost or replaced phone</h2>\
<form method=\"post\" action=\"/admin/users/{path}\">\
<input type=\"hidden\" name=\"reset_2fa\" value=\"on\">\
<p class=\"hint\" id=\"reset-help\">Removes the user's authenticator apps and recovery codes and ends \
all of the user's sessions: at the next login the user syncs a new app and gets new recovery codes.</p>\
<button type=\"submit\" class=\"secondary\" id=\"reset_2fa\" aria-describedby=\"reset-help\">\
Reset Two Factor Authentication</button></form></div>",
        name = escape(&u.username),
        tabs = admin_tabs("Users"),
        saved = notice(shown.text()),
        display = escape(&u.display_name),
        kind = kind_label(u.kind),
        kind_lower = kind_label(u.kind).to_ascii_lowercase(),
        admin_flag = yes_no(u.is_admin),
        enrolled = yes_no(enrolled),
        path = escape(&u.username),
        checked = if u.require_2fa { " checked" } else { "" },
    );
    layout(
        &format!("User ID: {}", u.username),
        Some(admin),
        Section::Admin,
        &body,
    )
}

/// A message (an error) with a way back.
pub(crate) fn message_page(title: &str, detail: &str) -> String {
    let body = format!(
        "<div class=\"card narrow\"><h1>{title}</h1><p class=\"alert\" role=\"alert\">{detail}</p>\
<p class=\"actions\"><a href=\"/\">Home</a><a href=\"/login\">Log in</a></p></div>",
        title = escape(title),
        detail = escape(detail),
    );
    layout(title, None, Section::None, &body)
}

/// The look of the library's `/2fa` pages, in the demo's style and with
/// the source product's labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoPages;

impl Pages for DemoPages {
    fn second_step(&self, p: &SecondStepPage<'_>) -> String {
        let checked = |m: &str| if p.method == m { " checked" } else { "" };
        // Off unless ticked: a shared computer must not keep the login.
        let remember = if p.offer_remember {
            "<div class=\"check\"><input type=\"checkbox\" id=\"remember\" name=\"remember\" value=\"on\" \
aria-describedby=\"remember-help\"><label for=\"remember\">Remember this device</label></div>\
<p class=\"hint\" id=\"remember-help\">No code on this browser for 30 days. \
Not on a shared computer.</p>"
        } else {
            ""
        };
        let body = format!(
            "<div class=\"card narrow\"><h1>Two Factor Authentication</h1>\
<p>Signed in as <strong>{name}</strong>. Confirm it is you.</p>{error}\
<form method=\"post\" action=\"{action}\">\
<fieldset><legend>Verify with</legend>\
<div class=\"check\"><input type=\"radio\" name=\"method\" value=\"totp\" id=\"method-totp\"{c1}>\
<label for=\"method-totp\">User Authenticator app</label></div>\
<div class=\"check\"><input type=\"radio\" name=\"method\" value=\"recovery\" id=\"method-recovery\"{c2}>\
<label for=\"method-recovery\">Recovery code</label></div></fieldset>\
<div class=\"field\"><label for=\"code\">Two Factor Authorization Code</label>\
<input type=\"text\" class=\"code\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
autofocus required maxlength=\"64\" aria-describedby=\"code-help\">\
<p class=\"hint\" id=\"code-help\">The {digits}-digit code your app shows now (spaces do not matter), \
or one of your recovery codes.</p></div>\
{remember}<button type=\"submit\" id=\"submit\">Submit</button></form>{LOGOUT_BUTTON}</div>",
            name = escape(p.display_name),
            error = alert(p.error),
            action = escape(p.action),
            c1 = checked("totp"),
            c2 = checked("recovery"),
            digits = p.digits,
        );
        layout("Two Factor Authentication", None, Section::None, &body)
    }

    fn enroll(&self, p: &EnrollPage<'_>) -> String {
        let body = format!(
            "<div class=\"card\"><h1>User Preference</h1>\
<nav class=\"tabs\" aria-label=\"User Preference\"><ul>\
<li><a href=\"/2fa/enroll\" aria-current=\"page\">Authenticator</a></li></ul></nav>\
<h2>Sync Authenticator App</h2>{error}\
<ol><li>Open your authenticator app (Google Authenticator, Microsoft Authenticator, Authy…).</li>\
<li>Choose to scan a QR code, and scan this one to add the account of {name}.</li>\
<li>Type the code the app shows, and Submit.</li></ol>\
<img class=\"qr\" id=\"qr\" src=\"{png}\" alt=\"QR code that adds {issuer} to an authenticator app\" width=\"240\" height=\"240\">\
<p>Cannot scan it? Add the account by hand with this key (time-based): \
<span class=\"key\" id=\"manual-key\">{key}</span> · <a href=\"{svg}\">QR code as SVG</a></p>\
<p><label for=\"key-copy\">Or copy the key as one string</label> \
<input type=\"text\" class=\"key\" id=\"key-copy\" value=\"{copy}\" readonly autocomplete=\"off\" spellcheck=\"false\"></p>\
<form method=\"post\" action=\"{action}\">\
<div class=\"field\"><label for=\"code\">Two Factor Authorization Code</label>\
<input type=\"text\" class=\"code\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
required maxlength=\"64\" aria-describedby=\"code-help\">\
<p class=\"hint\" id=\"code-help\">The {digits}-digit code your app shows after scanning.</p></div>\
<div class=\"actions\"><button type=\"submit\" id=\"submit\">Submit</button><a href=\"/\">Home</a></div></form>\
{LOGOUT_BUTTON}</div>",
            error = alert(p.error),
            name = escape(p.display_name),
            png = escape(p.qr_png_url),
            issuer = escape(p.issuer),
            key = escape(p.manual_key),
            copy = escape(p.key),
            svg = escape(p.qr_svg_url),
            action = escape(p.action),
            digits = p.digits,
        );
        layout("Sync Authenticator App", None, Section::None, &body)
    }

    fn recovery_codes(&self, p: &RecoveryCodesPage<'_>) -> String {
        let mut list = String::new();
        for c in p.codes {
            let _ = write!(list, "<li>{}</li>", escape(c));
        }
        let body = format!(
            "<div class=\"card\"><h1>Your recovery codes</h1>\
<p>Your authenticator app is synced. Keep these codes somewhere safe: each works once, \
if you lose your phone. They are shown only now.</p>\
<ol class=\"codes\" id=\"recovery-codes\">{list}</ol>\
<p><a href=\"{url}\" id=\"continue\">Continue</a></p></div>",
            url = escape(p.continue_url),
        );
        layout("Your recovery codes", None, Section::None, &body)
    }

    fn authenticators(&self, p: &AuthenticatorsPage<'_>) -> String {
        let mut rows = String::new();
        for r in p.rows {
            let _ = write!(
                rows,
                "<tr><td>{name}</td><td><form method=\"post\" action=\"{prefix}/authenticators/{id}/revoke\">\
<button type=\"submit\" class=\"secondary\">Revoke</button></form></td></tr>",
                name = escape(r.name),
                prefix = escape(p.prefix),
                id = escape(r.id),
            );
        }
        let body = format!(
            "<div class=\"card\"><h1>Authenticators</h1>\
<table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\"><span class=\"hint\">Action</span></th></tr></thead>\
<tbody id=\"authenticators\">{rows}</tbody></table>\
<p><a href=\"{prefix}/enroll\">Sync Authenticator App</a> (add or replace an app)</p>\
<p>{left} unused recovery codes.</p>\
<form method=\"post\" action=\"{prefix}/recovery-codes\"><button type=\"submit\">New recovery codes</button></form>\
<p><a href=\"/\">Home</a></p></div>",
            prefix = escape(p.prefix),
            left = p.recovery_codes_left,
        );
        layout("Authenticators", None, Section::None, &body)
    }

    fn message(&self, refusal: &Refusal) -> String {
        message_page(
            refusal
                .reason
                .status()
                .canonical_reason()
                .unwrap_or("Error"),
            refusal.reason.detail(),
        )
    }

    /// The enrollment grace period: how long is left, "Sync now" first.
    fn grace(&self, p: &GracePage<'_>) -> String {
        let body = format!(
            "<div class=\"card narrow\"><h1>Sync Authenticator App</h1>\
<p>{name}, your account requires two factor authentication. You can still log in with your password \
alone for <strong id=\"grace-left\">{left}</strong> (until <time datetime=\"{until}\">{until}</time>); \
after that, you must sync an authenticator app to log in.</p>\
<p class=\"actions\"><a id=\"sync-now\" href=\"{enroll}\">Sync now</a><a id=\"later\" href=\"{later}\">Later</a></p></div>",
            name = escape(p.display_name),
            left = escape(p.left),
            until = escape(p.until),
            enroll = escape(p.enroll_url),
            later = escape(p.later_url),
        );
        layout("Sync Authenticator App", None, Section::None, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Activity<'static> = Activity {
        entries: &[],
        few_recovery_codes: None,
    };

    fn user(display_name: &str, is_admin: bool) -> User {
        User {
            username: "u<1>".into(),
            display_name: display_name.into(),
            kind: UserKind::Internal,
            is_admin,
            require_2fa: true,
        }
    }

    #[test]
    fn what_users_typed_is_escaped() {
        let html = home_page(&user("<script>alert(1)</script>", false), "x", None, &NONE);
        assert!(!html.contains("<script>"));
        assert!(html.contains("Welcome, &lt;script&gt;"));
        let html = login_page(Some("<b>"), "\"><img src=x>");
        assert!(!html.contains("<img src=x>"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn only_admins_see_the_admin_link() {
        assert!(home_page(&user("A", true), "x", None, &NONE).contains("/admin/settings"));
        assert!(!home_page(&user("A", false), "x", None, &NONE).contains("/admin/settings"));
    }

    #[test]
    fn the_switches_show_their_state() {
        let s = PolicySettings {
            enabled: true,
            internal_users: false,
            external_users: true,
            grace_days: 14,
        };
        let html = settings_page(&user("A", true), s, false);
        assert!(html.contains("name=\"grace_days\""));
        assert!(html.contains("value=\"14\""));
        assert!(html.contains("id=\"internal_users-off\" checked"));
        assert!(html.contains("id=\"external_users-on\" checked"));
        assert!(html.contains("name=\"enabled\" value=\"on\" checked"));
    }
}
