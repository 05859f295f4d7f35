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
//!
//! With [`LoginBench::threads`], the logins of each step run on that many
//! OS threads at once, each driving its own share of the users through its
//! own single-threaded runtime, all through the one shared stack (one
//! engine, one memory store, one session store, one clock), as a
//! multi-threaded server shares them:
//!
//! ```
//! use totp_sim::bench::LoginBench;
//!
//! let mut bench = LoginBench::new(50).unwrap().threads(2).unwrap();
//! bench.logins(200).unwrap();
//! assert_eq!(bench.logins_by_thread(), [100, 100]);
//! ```

use std::collections::HashSet;
use std::thread::ThreadId;
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
    /// One single-threaded runtime per login thread (none for one thread:
    /// `runtime` serves).
    workers: Vec<tokio::runtime::Runtime>,
    /// Logins each thread made in the last [`LoginBench::logins`].
    by_thread: Vec<u64>,
    /// The fewest distinct OS threads that ran one step's logins, over the
    /// steps of the last [`LoginBench::logins`].
    fewest_threads: usize,
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
        // The learned offset is not read back: that lookup is the
        // simulator's, not part of a login.
        let driver = HttpDriver::simulated(config, clock.clone(), true, 1)?.read_back(false);
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
            workers: Vec::new(),
            by_thread: vec![0],
            fewest_threads: 0,
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

    /// Run the logins on `threads` OS threads at once (at least one; the
    /// default is one). User `i` of each step's logins goes to thread
    /// `i % threads`; every thread waits for the others before the clock
    /// moves to the next step.
    ///
    /// # Errors
    ///
    /// [`SimError::Runtime`] if a thread's runtime cannot start.
    pub fn threads(mut self, threads: usize) -> Result<Self, SimError> {
        let threads = threads.max(1);
        self.workers = if threads == 1 {
            Vec::new()
        } else {
            (0..threads)
                .map(|_| {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .map_err(SimError::Runtime)
                })
                .collect::<Result<_, _>>()?
        };
        self.by_thread = vec![0; threads];
        Ok(self)
    }

    /// How many logins each thread made in the last
    /// [`LoginBench::logins`], by thread.
    pub fn logins_by_thread(&self) -> &[u64] {
        &self.by_thread
    }

    /// The fewest distinct OS threads that ran one step's logins at once,
    /// over the steps of the last [`LoginBench::logins`] (the workers are
    /// spawned anew for each step): with [`threads`](LoginBench::threads)
    /// `n` and at least `n` logins a step, `n`.
    pub fn distinct_threads(&self) -> usize {
        self.fewest_threads
    }

    /// The driver the logins go through (its engine and store, to look at
    /// what the logins left).
    pub fn driver(&self) -> &HttpDriver {
        &self.driver
    }

    /// Run `n` logins, each user in turn with the code of a new step (the
    /// clock moves one step whenever every user has logged in); the time
    /// they took, without the codes' computation. With several
    /// [`threads`](LoginBench::threads) the time is the wall-clock time of
    /// each step's logins, from the threads' start to the last one's end.
    ///
    /// # Errors
    ///
    /// [`SimError::Driver`] if a login fails or is refused.
    pub fn logins(&mut self, n: u64) -> Result<Duration, SimError> {
        self.by_thread.iter_mut().for_each(|c| *c = 0);
        self.fewest_threads = usize::MAX;
        let mut total = Duration::ZERO;
        let mut left = n;
        if n == 0 {
            self.fewest_threads = 0;
        }
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
            total += if self.workers.is_empty() {
                self.by_thread[0] += round as u64;
                self.fewest_threads = 1;
                self.runtime
                    .block_on(login_all(&self.driver, users.iter().zip(&codes)))?
            } else {
                let (took, counts) = self.round_on_threads(users, &codes)?;
                let mut seen = HashSet::new();
                for (total, (count, thread)) in self.by_thread.iter_mut().zip(counts) {
                    *total += count;
                    if count > 0 {
                        seen.insert(thread);
                    }
                }
                self.fewest_threads = self.fewest_threads.min(seen.len());
                took
            };
            self.next = (self.next + round) % self.users.len();
            left -= round as u64;
        }
        Ok(total)
    }
}

impl LoginBench {
    /// One step's logins on the worker threads: the wall-clock time from
    /// their start to the last one's end, and each thread's count and id.
    fn round_on_threads(
        &self,
        users: &[(Account, Hotp)],
        codes: &[CodeText],
    ) -> Result<(Duration, Vec<(u64, ThreadId)>), SimError> {
        let threads = self.workers.len();
        let driver = &self.driver;
        let started = Instant::now();
        let done: Vec<Result<(u64, ThreadId), DriverError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .workers
                .iter()
                .enumerate()
                .map(|(t, runtime)| {
                    let mine = users
                        .iter()
                        .zip(codes)
                        .skip(t)
                        .step_by(threads)
                        .collect::<Vec<_>>();
                    scope.spawn(move || {
                        let count = mine.len() as u64;
                        runtime.block_on(login_all(driver, mine.into_iter()))?;
                        Ok((count, std::thread::current().id()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or(Err(DriverError::Protocol {
                        step: "bench",
                        detail: "a login thread panicked".into(),
                    }))
                })
                .collect()
        });
        let took = started.elapsed();
        let counts = done.into_iter().collect::<Result<_, _>>()?;
        Ok((took, counts))
    }
}

/// Log each account in with its code, one after the other; the time it took.
async fn login_all<'a>(
    driver: &HttpDriver,
    logins: impl Iterator<Item = (&'a (Account, Hotp), &'a CodeText)>,
) -> Result<Duration, DriverError> {
    let started = Instant::now();
    for ((account, _), code) in logins {
        let outcome = driver.login(account, code.as_str()).await?;
        if !outcome.is_accepted() {
            return Err(refused(account, outcome));
        }
    }
    Ok(started.elapsed())
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
