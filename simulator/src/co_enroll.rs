//! `[co_enroller]`: an attacker who knows the password of a user who has
//! not synced an app yet races the user's enrollment from sessions of its
//! own.
//!
//! For one victim, at the moment the victim enrolls:
//!
//! 1. `sessions_before` attacker sessions log in with the password and
//!    open `GET /2fa/enroll`, each keeping the secret it is shown;
//! 2. the victim logs in and opens `GET /2fa/enroll`: its phone scans the
//!    secret shown;
//! 3. `sessions_after` attacker sessions do as in 1;
//! 4. the sessions of 1 open `GET /2fa/enroll` again;
//! 5. the victim confirms with its phone's code. Refused, it reloads the
//!    page and, shown another secret, scans and confirms that one (a real
//!    user does what the page says);
//! 6. once the victim's confirmation is accepted, every attacker session
//!    confirms its own secret's code in its own session
//!    (`POST /2fa/enroll`);
//! 7. the attacker logs in afresh with the next code of every secret it was
//!    shown.
//!
//! **Secret seen**: an attacker session was shown a secret the victim was
//! shown. **Takeover**: an attacker confirmation (6) or login (7) is
//! accepted: a secret the attacker knows is active on the victim's
//! account. The attacker confirms only after the victim: a password alone
//! enrolls an account that has no authenticator, so whoever confirms first
//! owns the first authenticator, on any server; that race is outside what
//! a second factor can defend, and not counted. For the same reason the
//! attacker does not confirm at all when the victim could not enrol (the
//! pending-enrollment cap filled by the attacker's sessions: a denial of
//! service, seen in `enroll_failures`, no worse than enrolling first).

use tower_totp::code::{Hotp, Secret};

use crate::browser::{enroll_page, log_in, log_out, post_code};
use crate::driver::{Account, CodeText, Driver, DriverError, Enrolled};
use crate::scenario::CoEnrollerModel;
use crate::wire::{CodeAnswer, Jar};

const SECTION: &str = "co_enroller";

/// When the attack happens, in steps.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    /// The step of the victim's phone when it confirms.
    pub victim: u64,
    /// The server's step (the attacker's clock is right).
    pub server: u64,
    /// The step of the attacker's logins afterwards: a code the server
    /// accepts if the secret is active, and that no one used yet.
    pub login: u64,
}

/// What one attacked enrollment came to.
#[derive(Debug)]
pub struct CoEnrollment {
    /// What the victim's phone holds and the answer to its (last)
    /// confirmation; `None` if the victim got no enrollment page.
    pub victim: Option<(Enrolled, CodeAnswer)>,
    /// An attacker session was shown a secret the victim was shown.
    pub secret_seen: bool,
    /// A secret the attacker knows was accepted on the victim's account.
    pub takeover: bool,
    /// The step the attacker's accepted login used, if any.
    pub takeover_step: Option<u64>,
}

fn code(e: &Enrolled, step: u64) -> CodeText {
    CodeText::new(Hotp::new(&e.secret, e.params).code(step), e.params.digits())
}

/// An attacker session: its jar and the secrets it was shown.
struct Session {
    jar: Jar,
    shown: Vec<Enrolled>,
}

async fn attacker_session<D: Driver>(
    driver: &D,
    account: &Account,
) -> Result<Session, DriverError> {
    let mut jar = Jar::new();
    let mut shown = Vec::new();
    log_in(driver, SECTION, account, &mut jar).await?;
    if let Some(e) = enroll_page(driver, SECTION, &mut jar).await? {
        shown.push(e);
    }
    Ok(Session { jar, shown })
}

/// Attack the enrollment of `victim` as the [module](self) describes.
///
/// # Errors
///
/// [`DriverError`] when the driver speaks no HTTP or the server gives no
/// usable answer (the victim already enrolled, a 5xx).
pub async fn attack<D: Driver>(
    driver: &D,
    victim: &Account,
    plan: &CoEnrollerModel,
    steps: Steps,
) -> Result<CoEnrollment, DriverError> {
    let mut attackers = Vec::new();
    for _ in 0..plan.sessions_before {
        attackers.push(attacker_session(driver, victim).await?);
    }
    let mut jar = Jar::new();
    let next = log_in(driver, SECTION, victim, &mut jar).await?;
    if next != "enroll" && next != "done" {
        return Err(DriverError::Protocol {
            step: SECTION,
            detail: format!(
                "the victim is asked for `{next}`, not to enrol: it has an authenticator already"
            ),
        });
    }
    let mut victim_shown: Vec<Secret> = Vec::new();
    let mut phone = enroll_page(driver, SECTION, &mut jar).await?;
    if let Some(e) = &phone {
        victim_shown.push(e.secret.clone());
    }
    for _ in 0..plan.sessions_after {
        attackers.push(attacker_session(driver, victim).await?);
    }
    for a in attackers.iter_mut().take(plan.sessions_before as usize) {
        if let Some(e) = enroll_page(driver, SECTION, &mut a.jar).await? {
            a.shown.push(e);
        }
    }
    let mut answer = None;
    if let Some(e) = phone.clone() {
        let first = post_code(
            driver,
            SECTION,
            &mut jar,
            "/2fa/enroll",
            code(&e, steps.victim).as_str(),
        )
        .await?;
        answer = Some(first);
        if let CodeAnswer::Refused(_) = first
            && let Some(again) = enroll_page(driver, SECTION, &mut jar).await?
            && again.secret != e.secret
        {
            victim_shown.push(again.secret.clone());
            let second = post_code(
                driver,
                SECTION,
                &mut jar,
                "/2fa/enroll",
                code(&again, steps.victim).as_str(),
            )
            .await?;
            answer = Some(second);
            phone = Some(again);
        }
    }
    log_out(driver, SECTION, &mut jar).await?;

    let secret_seen = attackers
        .iter()
        .flat_map(|a| &a.shown)
        .any(|e| victim_shown.contains(&e.secret));
    // Only once the victim is enrolled: before, an attacker confirmation
    // would be a first one (see the module docs).
    let victim_enrolled = answer == Some(CodeAnswer::Done);
    let mut takeover = false;
    for a in &mut attackers {
        if victim_enrolled && let Some(own) = a.shown.last() {
            let c = code(own, steps.server);
            let confirmed =
                post_code(driver, SECTION, &mut a.jar, "/2fa/enroll", c.as_str()).await?;
            takeover |= confirmed == CodeAnswer::Done;
        }
        log_out(driver, SECTION, &mut a.jar).await?;
    }
    let mut known: Vec<&Enrolled> = Vec::new();
    for e in attackers.iter().flat_map(|a| &a.shown) {
        if !known.iter().any(|k| k.secret == e.secret) {
            known.push(e);
        }
    }
    let mut takeover_step = None;
    for e in known {
        let mut jar = Jar::new();
        if log_in(driver, SECTION, victim, &mut jar).await? == "totp" {
            let c = code(e, steps.login);
            if post_code(driver, SECTION, &mut jar, "/2fa", c.as_str()).await? == CodeAnswer::Done {
                takeover = true;
                takeover_step = Some(steps.login);
            }
        }
        log_out(driver, SECTION, &mut jar).await?;
        if takeover_step.is_some() {
            break;
        }
    }
    Ok(CoEnrollment {
        victim: phone.zip(answer),
        secret_seen,
        takeover,
        takeover_step,
    })
}
