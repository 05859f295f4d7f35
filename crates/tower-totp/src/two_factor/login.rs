//! Login codes: one store operation reads each authenticator's state and
//! charges the attempt, [`decide`] picks the step, and a second writes the
//! outcome back.

use std::fmt;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::TwoFactor;
use crate::audit::{self, AuditEvent};
use crate::clock::UnixTime;
use crate::code::{Code, parse_typed_code};
use crate::error::Error;
use crate::store::{Authenticator, ConsumeOutcome, StoreError, UserStatus};
use crate::throttle::Attempt;
use crate::user::UserId;
use crate::verify::decision::{Candidate, Decision, decide};
use crate::verify::{RejectReason, Verdict};

/// A login code read and charged, its decision not made yet: what
/// [`TwoFactor::begin_code`] returns. [`status`](Self::status) is the
/// user's status read in the same store operation, for callers that must
/// check it before the code counts; [`finish`](Self::finish) decides.
///
/// Dropping it without finishing leaves the attempt charged (when it was)
/// and no step consumed: the code is spent for the throttle and refused.
#[must_use = "a code check decides nothing until it is finished"]
pub struct CodeCheck<'a> {
    engine: &'a TwoFactor,
    user: &'a UserId,
    status: UserStatus,
    next: Next,
    /// Time spent in [`TwoFactor::begin_code`], for the latency histogram
    /// (what the caller does between the halves is not the engine's).
    began: Duration,
}

/// What [`CodeCheck::finish`] does.
enum Next {
    /// The answer is known without the secrets: not enrolled, malformed,
    /// locked out.
    Answered(RejectReason),
    /// Charged and allowed: decide among the authenticators that take a
    /// code of this many digits.
    Decide {
        authenticators: Vec<Authenticator>,
        code: Code,
        now: UnixTime,
    },
}

impl fmt::Debug for CodeCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the code, not even its digit count.
        f.debug_struct("CodeCheck")
            .field("user", self.user)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

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
    /// Two store operations: one reads the authenticators and charges the
    /// attempt, one consumes the step or records the miss. A malformed code
    /// (or one of a digit count none of the user's authenticators has)
    /// costs the first only, and is not charged.
    ///
    /// This is [`begin_code`](Self::begin_code) and
    /// [`CodeCheck::finish`] in one go.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`]: no decision could be made, and
    /// the caller must fail closed.
    #[tracing::instrument(level = "debug", skip_all, fields(user.id = %user))]
    pub async fn verify(&self, user: &UserId, input: &str) -> Result<Verdict, Error> {
        self.begin_code(user, input).await?.finish().await
    }

    /// The first half of [`verify`](Self::verify), for callers that need
    /// the user's status before the code counts (the `/2fa` endpoint checks
    /// that no reset ended the session): one store operation reads the
    /// status and the authenticators and charges the attempt. The input is
    /// parsed here, once; a malformed code is not charged.
    ///
    /// Call [`CodeCheck::finish`] for the verdict. Dropping the check
    /// instead leaves the attempt charged and no step consumed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: the caller must fail closed.
    pub async fn begin_code<'a>(
        &'a self,
        user: &'a UserId,
        input: &str,
    ) -> Result<CodeCheck<'a>, Error> {
        let timer = Instant::now();
        let code = parse_typed_code(input);
        let now = self.now();
        let policy = self.inner.config.throttle();
        let start = self
            .inner
            .store
            .begin_verification(user, now, &policy, code.map(|c| c.digits()))
            .await?;
        let next = match (code, start.attempt) {
            _ if start.authenticators.is_empty() => Next::Answered(RejectReason::NotEnrolled),
            (None, _) | (Some(_), None) => {
                // The store charges exactly when an authenticator takes a
                // code of this many digits: none here means malformed.
                if let Some(c) = code
                    && start
                        .authenticators
                        .iter()
                        .any(|a| a.params.digits() == c.digits())
                {
                    return Err(Error::from(StoreError::corrupt(
                        "begin_verification charged nothing for a code it could check",
                    )));
                }
                audit::emit(AuditEvent::Failed, user, "malformed");
                Next::Answered(RejectReason::Malformed)
            }
            (Some(_), Some(Attempt::Locked { retry_after })) => {
                Next::Answered(self.locked_out(user, retry_after).await)
            }
            (Some(code), Some(Attempt::Allowed)) => Next::Decide {
                authenticators: start.authenticators,
                code,
                now,
            },
        };
        Ok(CodeCheck {
            engine: self,
            user,
            status: start.status,
            next,
            began: timer.elapsed(),
        })
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
                crate::metrics::clock_offset(offset as f64 * f64::from(a.params.period()));
                let event = if resynchronised {
                    crate::metrics::resynchronised();
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

impl CodeCheck<'_> {
    /// The user's status, read in the same store operation as the
    /// authenticators and the charge.
    pub fn status(&self) -> &UserStatus {
        &self.status
    }

    /// Decide the code and write the outcome back: the verdict
    /// [`TwoFactor::verify`] gives. One store operation when the code was
    /// charged and allowed (`consume_step` or `record_miss`), none
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] or [`Error::Seal`]: no decision could be made, and
    /// the caller must fail closed.
    pub async fn finish(self) -> Result<Verdict, Error> {
        let timer = Instant::now();
        let began = self.began;
        let verdict = self.decide().await?;
        let refusal = match &verdict {
            Verdict::Accepted { .. } => None,
            Verdict::Rejected(reason) => Some(reason),
        };
        crate::metrics::code_decided(refusal, began + timer.elapsed());
        Ok(verdict)
    }

    /// What [`finish`](Self::finish) answers, before it is counted.
    async fn decide(self) -> Result<Verdict, Error> {
        let (engine, user) = (self.engine, self.user);
        let (authenticators, code, now) = match self.next {
            Next::Answered(reason) => return Ok(Verdict::Rejected(reason)),
            Next::Decide {
                authenticators,
                code,
                now,
            } => (authenticators, code, now),
        };
        // Only the authenticators that take this many digits; candidate
        // `i` is that of `authenticators[owners[i]]`. Each is keyed once.
        // Nearly every user has one or two: no allocation for those.
        let mut owners: SmallVec<[usize; 2]> = SmallVec::new();
        let mut candidates: SmallVec<[Candidate; 2]> = SmallVec::new();
        for (i, authenticator) in authenticators.iter().enumerate() {
            if authenticator.params.digits() != code.digits() {
                continue;
            }
            let hotp = engine.keyed(user, authenticator)?;
            owners.push(i);
            candidates.push(Candidate {
                hotp,
                code,
                now_step: authenticator.params.step_at(now),
                sync: authenticator.sync,
            });
        }
        let owner = |index: usize| &authenticators[owners[index]];
        match decide(&engine.inner.config.window(), &candidates) {
            Decision::InWindow {
                index,
                step,
                offset,
            } => {
                engine
                    .consume(user, owner(index), step, offset, false)
                    .await
            }
            Decision::Resync {
                index,
                step,
                offset,
            } => engine.consume(user, owner(index), step, offset, true).await,
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
                engine.inner.store.record_miss(user, candidate).await?;
                audit::emit(AuditEvent::Failed, user, detail);
                Ok(Verdict::Rejected(RejectReason::Invalid))
            }
        }
    }
}
