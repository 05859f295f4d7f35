//! `GET {prefix}/grace`: the page of a login in the enrollment grace
//! period ([`PolicySettings::grace_days`](crate::policy::PolicySettings::grace_days)).

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use super::context::{Ctx, Fail, refuse};
use crate::http::language::Strings;
use crate::http::pages::GracePage;
use crate::http::refusal::{Next, RefusalReason};
use crate::http::respond::{FullResponse, html_response, json_response};
use crate::policy::Requirement;

/// The page while the period runs; what the layer would answer otherwise
/// (enrol once it is over, the second screen for a user who enrolled
/// meanwhile, nothing for one to whom 2FA no longer applies).
pub(super) fn show(ctx: &Ctx) -> Result<FullResponse, Fail> {
    match ctx.requirement() {
        Requirement::NotRequired => return Ok(ctx.done(json!({}))),
        Requirement::Challenge => {
            return Err(refuse(RefusalReason::SecondStepRequired, Some(Next::Totp)));
        }
        Requirement::Enroll => {}
    }
    let Some(until) = ctx.grace_until().filter(|until| ctx.now < *until) else {
        return Err(refuse(
            RefusalReason::EnrollmentRequired,
            Some(Next::Enroll),
        ));
    };
    let until_text = until.to_rfc3339();
    if !ctx.format.is_html() {
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "next": "done", "grace_until": until_text }),
        ));
    }
    let enroll_url = format!("{}/enroll", ctx.prefix());
    let left = left_in_words(until.duration_since(ctx.now), &ctx.strings);
    let page = ctx.auth.pages().grace(&GracePage {
        display_name: &ctx.info.display_name,
        left: &left,
        until: &until_text,
        enroll_url: &enroll_url,
        later_url: ctx.auth.after_login(),
        strings: &ctx.strings,
    });
    Ok(html_response(StatusCode::OK, page))
}

/// How long is left, rounded up to the unit shown: "1 day" while a day
/// or less but more than 23 hours is left would read as a lie the other way.
fn left_in_words(left: Duration, t: &Strings) -> String {
    let secs = left.as_secs().max(1);
    let (n, one, many) = if secs > 86_400 {
        (secs.div_ceil(86_400), t.day, t.days)
    } else if secs > 3600 {
        (secs.div_ceil(3600), t.hour, t.hours)
    } else {
        (secs.div_ceil(60), t.minute, t.minutes)
    };
    if n == 1 {
        one.to_owned()
    } else {
        many.replace("{n}", &n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_is_rounded_up_to_its_unit() {
        let words = |s| left_in_words(Duration::from_secs(s), &Strings::ENGLISH);
        assert_eq!(words(7 * 86_400), "7 days");
        assert_eq!(words(6 * 86_400 + 1), "7 days");
        assert_eq!(words(86_400 + 1), "2 days");
        assert_eq!(words(86_400), "24 hours");
        assert_eq!(words(3601), "2 hours");
        assert_eq!(words(3600), "60 minutes");
        assert_eq!(words(61), "2 minutes");
        assert_eq!(words(1), "1 minute");
        assert_eq!(words(0), "1 minute");
        let german = left_in_words(Duration::from_secs(3 * 86_400), &Strings::GERMAN);
        assert_eq!(german, "3 Tage");
    }
}
