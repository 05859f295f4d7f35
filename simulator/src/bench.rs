//! Full logins through the in-process HTTP stack, timed, for benchmarks:
//! no event queue, no scenario, only [`HttpDriver::login`] (the password
//! request and the code request through sessions, the layer and the
//! endpoints) with a correct, fresh code every time.
//!
//! ```
//! use totp_sim::bench::LoginBench;
//!
//! let mut bench = LoginBench::new(50).unwrap(); // 50 enrolled users
//! let took = bench.logins(200).unwrap(); // 200 accepted logins
//! println!("{:.0} logins/s", 200.0 / took.as_secs_f64());
//! ```
//!
//! In a criterion bench, set up once and let `iter_custom` ask for the
//! count: `b.iter_custom(|n| bench.logins(n).unwrap())`.

use std::time::{Duration, Instant};

use tower_totp::TotpConfig;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;

use crate::driver::{Account, CodeText, Driver, DriverError};
use crate::http_driver::HttpDriver;
use crate::run::SimError;

/// A fleet of enrolled users behind an [`HttpDriver`] on a manual clock.
#[derive(Debug)]
pub struct LoginBench {
    runtime: tokio::runtime::Runtime,
    driver: HttpDriver,
    clock: ManualClock,
    users: Vec<(Account, Hotp)>,
    digits: u8,
    period_ms: u64,
    next: usize,
}

impl LoginBench {
    /// Enroll `users` users (at least one) through the endpoints.
    ///
    /// # Errors
    ///
    /// [`SimError`] if the runtime cannot start or an enrollment fails.
    pub fn new(users: u32) -> Result<Self, SimError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(SimError::Runtime)?;
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_010));
        let config = TotpConfig::new("Bench").map_err(|e| DriverError::Protocol {
            step: "setup",
            detail: e.to_string(),
        })?;
        let params = config.params();
        let driver = HttpDriver::simulated(config, clock.clone(), true, 1)?;
        let step = params.step_at(clock.now());
        let digits = params.digits();
        let users = runtime.block_on(async {
            let mut out = Vec::new();
            for i in 0..users.max(1) {
                let account = Account::simulated(i);
                let e = driver.enroll(&account).await?;
                let phone = Hotp::new(&e.secret, e.params);
                let code = CodeText::new(phone.code(step), digits);
                let outcome = driver.confirm(&account, code.as_str()).await?;
                if !outcome.is_accepted() {
                    return Err(refused(&account, outcome));
                }
                out.push((account, phone));
            }
            Ok::<_, DriverError>(out)
        })?;
        Ok(Self {
            runtime,
            driver,
            clock,
            users,
            digits,
            period_ms: u64::from(params.period()) * 1000,
            next: 0,
        })
    }

    /// Also `GET /hello` after each login ([`HttpDriver::confirm_access`]):
    /// a third request per login.
    #[must_use]
    pub fn confirm_access(mut self, on: bool) -> Self {
        self.driver = self.driver.confirm_access(on);
        self
    }

    /// Run `n` logins, each user in turn with the code of a new step (the
    /// clock moves one step whenever every user has logged in); the time
    /// they took, without the codes' computation.
    ///
    /// # Errors
    ///
    /// [`SimError::Driver`] if a login fails or is refused.
    pub fn logins(&mut self, n: u64) -> Result<Duration, SimError> {
        let mut total = Duration::ZERO;
        let mut left = n;
        let mut codes = Vec::with_capacity(self.users.len());
        while left > 0 {
            if self.next == 0 {
                self.clock.set(UnixTime::from_millis(
                    self.clock.now().as_millis() + self.period_ms,
                ));
            }
            let step = self.clock.now().as_millis() / self.period_ms;
            let round =
                (self.users.len() - self.next).min(usize::try_from(left).unwrap_or(usize::MAX));
            codes.clear();
            codes.extend(
                self.users[self.next..self.next + round]
                    .iter()
                    .map(|(_, phone)| CodeText::new(phone.code(step), self.digits)),
            );
            let users = &self.users[self.next..self.next + round];
            let driver = &self.driver;
            total += self.runtime.block_on(async {
                let started = Instant::now();
                for ((account, _), code) in users.iter().zip(&codes) {
                    let outcome = driver.login(account, code.as_str()).await?;
                    if !outcome.is_accepted() {
                        return Err(refused(account, outcome));
                    }
                }
                Ok::<_, DriverError>(started.elapsed())
            })?;
            self.next = (self.next + round) % self.users.len();
            left -= round as u64;
        }
        Ok(total)
    }
}

fn refused(account: &Account, outcome: crate::driver::Outcome) -> DriverError {
    DriverError::Protocol {
        step: "2fa",
        detail: format!("{}: a correct code got {outcome:?}", account.id.as_str()),
    }
}

/// `n` accepted full logins through the in-process HTTP stack with 1,000
/// users enrolled beforehand (not timed); the time the logins took.
///
/// # Errors
///
/// [`SimError`] as [`LoginBench::new`] and [`LoginBench::logins`].
pub fn bench_logins(n: u64) -> Result<Duration, SimError> {
    LoginBench::new(1000)?.logins(n)
}
