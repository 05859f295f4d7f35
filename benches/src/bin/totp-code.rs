//! Print the current TOTP code (SHA-1, 6 digits, 30 s: the defaults) for a
//! base32 secret read from standard input, so that scripts can finish an
//! enrollment: `scripts/loadtest` pipes the demo's `secret` into it. The
//! secret is read from standard input rather than the command line, where
//! other users of the machine could see it.
//!
//! ```text
//! echo JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP | cargo run -q -p tower-totp-benches --bin totp-code
//! ```

use std::io::Read;
use std::process::ExitCode;

use tower_totp::clock::{Clock, SystemClock};
use tower_totp::code::{CodeParams, Hotp, Secret};

fn main() -> ExitCode {
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() {
        eprintln!("totp-code: cannot read the secret from standard input");
        return ExitCode::FAILURE;
    }
    let Ok(secret) = Secret::from_base32(text.trim()) else {
        eprintln!("totp-code: standard input is not a base32 secret of at least 128 bits");
        return ExitCode::FAILURE;
    };
    let params = CodeParams::default();
    let hotp = Hotp::new(&secret, params);
    println!("{}", hotp.code_string(params.step_at(SystemClock.now())));
    ExitCode::SUCCESS
}
