//! Login codes: the engine reads each authenticator's state, lets
//! [`decide`] pick the step, and writes the outcome back.

use super::TwoFactor;
use crate::audit::{self, AuditEvent};
use crate::code::{Code, parse_code};
use crate::error::Error;
use crate::store::{Authenticator, ConsumeOutcome};
use crate::user::UserId;
use crate::verify::decision::{Candidate, Decision, decide};
use crate::verify::{RejectReason, Verdict};

impl TwoFactor {
    /// Check a code typed at login.
    ///
    /// Every candidate step of every authenticator is computed and compared
    /// in constant time. A code that matches inside the window is accepted
    /// once (compare-and-set in the store). A code that matches outside the
    /// window but within the maximum drift is remembered; the code of the
    /// very next step at the same offset then resynchronises the device,
    /// provided the offset change is plausible for the time since the
    /// device's last accepted code
    /// ([`Window::allows_offset_change`](crate::verify::Window::allows_offset_change)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`]: no decision could be made, and
    /// the caller must fail closed.
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn verify(&self, user: &UserId, input: &str) -> Result<Verdict, Error> {
        let store = &self.inner.store;
        let authenticators = store.authenticators(user).await?;
        if authenticators.is_empty() {
            return Ok(Verdict::Rejected(RejectReason::NotEnrolled));
        }
        // Authenticators normally share one digit count; parse once per count.
        let parsed: Vec<(usize, Code)> = authenticators
            .iter()
            .enumerate()
            .filter_map(|(i, a)| parse_code(input, a.params.digits()).ok().map(|c| (i, c)))
            .collect();
        if parsed.is_empty() {
            audit::emit(AuditEvent::Failed, user, "malformed");
            return Ok(Verdict::Rejected(RejectReason::Malformed));
        }
        if let Some(reason) = self.charge_attempt(user).await? {
            return Ok(Verdict::Rejected(reason));
        }
        let now = self.now();
        // Key every authenticator once; candidate `i` is that of
        // `authenticators[parsed[i].0]`.
        let candidates = parsed
            .iter()
            .map(|&(i, code)| {
                let a = &authenticators[i];
                Ok(Candidate {
                    hotp: self.keyed(user, a)?,
                    code,
                    now_step: a.params.step_at(now),
                    sync: a.sync,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let owner = |index: usize| &authenticators[parsed[index].0];
        match decide(&self.inner.config.window(), &candidates) {
            Decision::InWindow {
                index,
                step,
                offset,
            } => self.consume(user, owner(index), step, offset, false).await,
            Decision::Resync {
                index,
                step,
                offset,
            } => self.consume(user, owner(index), step, offset, true).await,
            Decision::Miss { candidate } => {
                // A miss and a match outside the window do the same store
                // work: one `record_miss`, so that no response time tells
                // them apart.
                let detail = if candidate.is_some() {
                    "outside window, resync candidate kept"
                } else {
                    "invalid"
                };
                let candidate = candidate.map(|(index, c)| (owner(index).id.clone(), c));
                store.record_miss(user, candidate).await?;
                audit::emit(AuditEvent::Failed, user, detail);
                Ok(Verdict::Rejected(RejectReason::Invalid))
            }
        }
    }

    async fn consume(
        &self,
        user: &UserId,
        a: &Authenticator,
        step: u64,
        offset: i64,
        resynchronised: bool,
    ) -> Result<Verdict, Error> {
        // A consumed step also clears the user's throttle, in the same
        // atomic store call (the `StepStore::consume_step` contract): no
        // `clear_throttle` round trip after it. A replay or a revoked
        // authenticator leaves the failures counted.
        let store = &self.inner.store;
        match store.consume_step(user, &a.id, step, offset).await? {
            ConsumeOutcome::Consumed => {
                self.reseal_if_old(user, a).await;
                let event = if resynchronised {
                    AuditEvent::Resynchronised
                } else {
                    AuditEvent::Verified
                };
                audit::emit(event, user, "accepted");
                Ok(Verdict::Accepted {
                    authenticator: a.id.clone(),
                    step,
                    offset,
                    resynchronised,
                })
            }
            ConsumeOutcome::Replayed => {
                audit::emit(AuditEvent::ReplayRefused, user, "step already used");
                Ok(Verdict::Rejected(RejectReason::Replayed))
            }
            ConsumeOutcome::NotFound => {
                audit::emit(AuditEvent::Failed, user, "authenticator revoked meanwhile");
                Ok(Verdict::Rejected(RejectReason::Invalid))
            }
        }
    }
}
