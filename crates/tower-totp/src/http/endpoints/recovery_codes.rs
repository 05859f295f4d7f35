//! `POST {prefix}/recovery-codes`: a new set of recovery codes, shown once,
//! in place of the old set (recent second step required).

use http::StatusCode;
use serde_json::json;

use super::context::{Ctx, Fail, refuse};
use crate::http::pages::RecoveryCodesPage;
use crate::http::refusal::{Next, RefusalReason};
use crate::http::respond::{FullResponse, html_response, json_response};

/// `POST {prefix}/recovery-codes`.
pub(super) async fn regenerate(ctx: &Ctx) -> Result<FullResponse, Fail> {
    ctx.require_recent_step()?;
    if !ctx.status.enrolled {
        return Err(refuse(
            RefusalReason::EnrollmentRequired,
            Some(Next::Enroll),
        ));
    }
    let codes = ctx
        .auth
        .engine()
        .issue_recovery_codes(&ctx.state.user)
        .await?;
    let list: Vec<&str> = codes.as_strings().collect();
    if ctx.format.is_html() {
        let back = format!("{}/authenticators", ctx.prefix());
        let html = ctx.auth.pages().recovery_codes(&RecoveryCodesPage {
            codes: &list,
            continue_url: &back,
            strings: &ctx.strings,
        });
        return Ok(html_response(StatusCode::OK, html));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "recovery_codes": list }),
    ))
}
