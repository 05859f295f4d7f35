//! The user's authenticators: `GET {prefix}/authenticators` lists them,
//! `POST {prefix}/authenticators/{id}/revoke` (or `DELETE
//! {prefix}/authenticators/{id}`) revokes one. Both need a recent second
//! step.

use http::StatusCode;
use serde_json::json;

use super::context::{Ctx, Fail, refuse};
use crate::http::pages::{AuthenticatorRow, AuthenticatorsPage};
use crate::http::refusal::RefusalReason;
use crate::http::respond::{FullResponse, html_response, json_response, see_other};
use crate::http::session::session_error;
use crate::store::{AuthenticatorId, RevokeOutcome};

/// `GET {prefix}/authenticators`.
pub(super) async fn list(ctx: &Ctx) -> Result<FullResponse, Fail> {
    ctx.require_recent_step()?;
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    let all = engine.authenticators(user).await?;
    let left = engine.recovery_codes_left(user).await?;
    if ctx.format.is_html() {
        let rows: Vec<AuthenticatorRow<'_>> = all
            .iter()
            .map(|a| AuthenticatorRow {
                id: a.id.as_str(),
                name: &a.name,
            })
            .collect();
        let html = ctx.auth.pages().authenticators(&AuthenticatorsPage {
            prefix: ctx.prefix(),
            rows: &rows,
            recovery_codes_left: left,
            strings: &ctx.strings,
        });
        return Ok(html_response(StatusCode::OK, html));
    }
    let items: Vec<_> = all
        .iter()
        .map(|a| json!({ "id": a.id.as_str(), "name": a.name, "created_at": a.created_at.as_secs() }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "authenticators": items, "recovery_codes_left": left }),
    ))
}

/// `POST {prefix}/authenticators/{id}/revoke`, `DELETE {prefix}/authenticators/{id}`.
pub(super) async fn revoke(ctx: &Ctx, id: &str) -> Result<FullResponse, Fail> {
    ctx.require_recent_step()?;
    let engine = ctx.auth.engine();
    let user = &ctx.state.user;
    if engine.revoke(user, &AuthenticatorId::new(id)).await? == RevokeOutcome::NotFound {
        return Err(refuse(RefusalReason::NotFound, None));
    }
    // The epoch moved: keep this session's own recent verification valid.
    let status = engine.status(user).await?;
    if let Some((method, at)) = ctx.state.verified_at(ctx.status.epoch) {
        let state = ctx.state.verified(status.epoch, method, at);
        state.save(&ctx.session).await.map_err(session_error)?;
    }
    if ctx.format.is_html() {
        return Ok(see_other(&format!("{}/authenticators", ctx.prefix())));
    }
    Ok(json_response(StatusCode::OK, &json!({ "revoked": true })))
}
