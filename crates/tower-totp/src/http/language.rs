//! The words of the default pages, one [`Strings`] table per language, and
//! [`Languages`], which picks the table for a request's `Accept-Language`.
//!
//! English and German are shipped; a service adds its own table with
//! [`TotpAuthBuilder::language`](super::TotpAuthBuilder::language). JSON
//! answers (problem `detail`s) stay English: they are read by programs
//! and by the developers who write them.

use std::sync::Arc;

use http::{HeaderMap, header};

use super::refusal::RefusalReason;
use crate::verify::RejectReason;

/// Every string of the default pages in one language. `{name}`, `{issuer}`,
/// `{digits}` and `{left}` are replaced where they appear. Every field is
/// public and required, so that a table made for a newer version of this
/// crate does not compile with a string missing; start from
/// [`Strings::ENGLISH`] with `..` to leave some untranslated on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Strings {
    /// The `lang` attribute of the pages (a BCP 47 tag: `en`, `de`).
    pub lang: &'static str,
    pub second_step_title: &'static str,
    /// `{name}`: the user's display name.
    pub signed_in_as: &'static str,
    pub method_legend: &'static str,
    pub method_totp: &'static str,
    pub method_recovery: &'static str,
    pub code_label: &'static str,
    /// `{digits}`.
    pub code_help: &'static str,
    pub remember_device: &'static str,
    pub submit: &'static str,
    pub enroll_title: &'static str,
    pub enroll_nav_label: &'static str,
    pub enroll_nav_current: &'static str,
    /// `{name}`.
    pub enroll_intro: &'static str,
    /// `{issuer}`.
    pub qr_alt: &'static str,
    pub manual_key: &'static str,
    pub key_copy_label: &'static str,
    pub qr_svg_link: &'static str,
    /// `{digits}`.
    pub enroll_code_help: &'static str,
    pub recovery_title: &'static str,
    pub recovery_intro: &'static str,
    pub continue_link: &'static str,
    pub authenticators_title: &'static str,
    pub resync: &'static str,
    pub revoke: &'static str,
    pub add_label: &'static str,
    pub add_placeholder: &'static str,
    pub add_button: &'static str,
    /// `{left}`.
    pub codes_left: &'static str,
    pub new_codes: &'static str,
    pub grace_title: &'static str,
    /// `{name}`, `{left}` (how long, from the unit strings below) and
    /// `{until}` (the end, RFC 3339).
    pub grace_text: &'static str,
    pub grace_sync_now: &'static str,
    pub grace_later: &'static str,
    /// `{n}`: a count of days (`day` for one, `days` for more); the same
    /// for hours and minutes.
    pub day: &'static str,
    pub days: &'static str,
    pub hour: &'static str,
    pub hours: &'static str,
    pub minute: &'static str,
    pub minutes: &'static str,
    pub home_link: &'static str,
    /// The heading of a refusal page.
    pub message_heading: &'static str,
    pub login_required: &'static str,
    pub second_step_required: &'static str,
    pub enrollment_required: &'static str,
    pub step_expired: &'static str,
    pub step_up_required: &'static str,
    pub code_malformed: &'static str,
    pub code_replayed: &'static str,
    pub code_invalid: &'static str,
    pub not_enrolled: &'static str,
    pub no_pending_enrollment: &'static str,
    pub throttled: &'static str,
    pub too_many_pending_enrollments: &'static str,
    pub too_many_authenticators: &'static str,
    pub store_unavailable: &'static str,
    pub cross_origin: &'static str,
    pub not_found: &'static str,
    /// Every other refusal (bad requests, misconfiguration): the page adds
    /// no detail the user could act on.
    pub other_refusal: &'static str,
}

impl Strings {
    /// English, the fallback.
    pub const ENGLISH: Self = Self {
        lang: "en",
        second_step_title: "Two Factor Authentication",
        signed_in_as: "Signed in as {name}. Choose how to confirm it is you.",
        method_legend: "Method",
        method_totp: "User Authenticator app",
        method_recovery: "Recovery code",
        code_label: "Two Factor Authorization Code",
        code_help: "The {digits}-digit code your app shows now, or a recovery code. Spaces and dashes do not matter.",
        remember_device: "Remember this device",
        submit: "Submit",
        enroll_title: "Sync Authenticator App",
        enroll_nav_label: "User Preference",
        enroll_nav_current: "Authenticator",
        enroll_intro: "{name}: scan this QR code with your authenticator app (Google Authenticator, Microsoft Authenticator, Authy…), then type the code it shows.",
        qr_alt: "QR code to add {issuer} to an authenticator app",
        manual_key: "Cannot scan? Enter this key by hand (time-based):",
        key_copy_label: "Or copy the key as one string",
        qr_svg_link: "QR code as SVG",
        enroll_code_help: "The {digits}-digit code your app shows after scanning.",
        recovery_title: "Your recovery codes",
        recovery_intro: "Keep these somewhere safe. Each works once, if you lose your phone. They are shown only now.",
        continue_link: "Continue",
        authenticators_title: "Authenticators",
        resync: "Re-sync",
        revoke: "Revoke",
        add_label: "Add an authenticator, named",
        add_placeholder: "Authenticator app",
        add_button: "Add an authenticator",
        codes_left: "{left} unused recovery codes.",
        new_codes: "New recovery codes",
        grace_title: "Sync an authenticator app",
        grace_text: "{name}, your account will soon require a second factor. You can log in with your password alone for {left} more (until {until}); after that, you must sync an app to log in.",
        grace_sync_now: "Sync now",
        grace_later: "Later",
        day: "1 day",
        days: "{n} days",
        hour: "1 hour",
        hours: "{n} hours",
        minute: "1 minute",
        minutes: "{n} minutes",
        home_link: "Home",
        message_heading: "Two Factor Authentication",
        login_required: "Log in with your user name and password first.",
        second_step_required: "Enter the code from your authenticator app.",
        enrollment_required: "Two-factor authentication is required: sync an authenticator app first.",
        step_expired: "The login took too long. Log in again.",
        step_up_required: "Confirm it is you: enter a code from your authenticator app.",
        code_malformed: "That is not a code: type the digits shown in your app (spaces and dashes are fine).",
        code_replayed: "That code was already used. Wait for the next code in your app.",
        code_invalid: "That code is not valid. Check the app and try again.",
        not_enrolled: "No authenticator app is set up.",
        no_pending_enrollment: "The setup expired. Start again to get a new QR code.",
        throttled: "Too many attempts. Wait a moment, then try again.",
        too_many_pending_enrollments: "Too many app setups are waiting for their first code. Finish one, or wait a few minutes and start again.",
        too_many_authenticators: "You have as many authenticator apps as allowed. Remove one before adding another.",
        store_unavailable: "Two-factor authentication is unavailable right now. Try again shortly.",
        cross_origin: "This change came from a page of another site or origin and was refused. Open this site's own page and try again there.",
        not_found: "No such page.",
        other_refusal: "The request could not be handled.",
    };

    /// German.
    pub const GERMAN: Self = Self {
        lang: "de",
        second_step_title: "Zwei-Faktor-Authentifizierung",
        signed_in_as: "Angemeldet als {name}. Wählen Sie, wie Sie bestätigen, dass Sie es sind.",
        method_legend: "Methode",
        method_totp: "Authenticator-App",
        method_recovery: "Wiederherstellungscode",
        code_label: "Zwei-Faktor-Authentifizierungscode",
        code_help: "Der {digits}-stellige Code, den Ihre App gerade anzeigt, oder ein Wiederherstellungscode. Leerzeichen und Bindestriche spielen keine Rolle.",
        remember_device: "Dieses Gerät merken",
        submit: "Absenden",
        enroll_title: "Authenticator-App synchronisieren",
        enroll_nav_label: "Benutzereinstellungen",
        enroll_nav_current: "Authenticator",
        enroll_intro: "{name}: Scannen Sie diesen QR-Code mit Ihrer Authenticator-App (Google Authenticator, Microsoft Authenticator, Authy …) und geben Sie dann den angezeigten Code ein.",
        qr_alt: "QR-Code, der {issuer} zu einer Authenticator-App hinzufügt",
        manual_key: "Scannen nicht möglich? Geben Sie diesen Schlüssel von Hand ein (zeitbasiert):",
        key_copy_label: "Oder kopieren Sie den Schlüssel als eine Zeichenfolge",
        qr_svg_link: "QR-Code als SVG",
        enroll_code_help: "Der {digits}-stellige Code, den Ihre App nach dem Scannen anzeigt.",
        recovery_title: "Ihre Wiederherstellungscodes",
        recovery_intro: "Bewahren Sie diese Codes sicher auf. Jeder funktioniert einmal, falls Sie Ihr Telefon verlieren. Sie werden nur jetzt angezeigt.",
        continue_link: "Weiter",
        authenticators_title: "Authenticator-Apps",
        resync: "Neu synchronisieren",
        revoke: "Entfernen",
        add_label: "Eine Authenticator-App hinzufügen, mit dem Namen",
        add_placeholder: "Authenticator-App",
        add_button: "Authenticator-App hinzufügen",
        codes_left: "{left} unbenutzte Wiederherstellungscodes.",
        new_codes: "Neue Wiederherstellungscodes",
        grace_title: "Authenticator-App synchronisieren",
        grace_text: "{name}, Ihr Konto verlangt bald einen zweiten Faktor. Sie können sich noch {left} lang nur mit Ihrem Passwort anmelden (bis {until}); danach müssen Sie eine App synchronisieren, um sich anzumelden.",
        grace_sync_now: "Jetzt synchronisieren",
        grace_later: "Später",
        day: "1 Tag",
        days: "{n} Tage",
        hour: "1 Stunde",
        hours: "{n} Stunden",
        minute: "1 Minute",
        minutes: "{n} Minuten",
        home_link: "Startseite",
        message_heading: "Zwei-Faktor-Authentifizierung",
        login_required: "Melden Sie sich zuerst mit Benutzername und Passwort an.",
        second_step_required: "Geben Sie den Code aus Ihrer Authenticator-App ein.",
        enrollment_required: "Zwei-Faktor-Authentifizierung ist erforderlich: Synchronisieren Sie zuerst eine Authenticator-App.",
        step_expired: "Die Anmeldung hat zu lange gedauert. Melden Sie sich erneut an.",
        step_up_required: "Bestätigen Sie, dass Sie es sind: Geben Sie einen Code aus Ihrer Authenticator-App ein.",
        code_malformed: "Das ist kein Code: Geben Sie die Ziffern ein, die Ihre App anzeigt (Leerzeichen und Bindestriche sind erlaubt).",
        code_replayed: "Dieser Code wurde bereits verwendet. Warten Sie auf den nächsten Code in Ihrer App.",
        code_invalid: "Dieser Code ist ungültig. Prüfen Sie die App und versuchen Sie es erneut.",
        not_enrolled: "Es ist keine Authenticator-App eingerichtet.",
        no_pending_enrollment: "Die Einrichtung ist abgelaufen. Beginnen Sie erneut, um einen neuen QR-Code zu erhalten.",
        throttled: "Zu viele Versuche. Warten Sie einen Moment und versuchen Sie es dann erneut.",
        too_many_pending_enrollments: "Zu viele App-Einrichtungen warten auf ihren ersten Code. Schließen Sie eine ab oder warten Sie einige Minuten und beginnen Sie erneut.",
        too_many_authenticators: "Sie haben so viele Authenticator-Apps wie erlaubt. Entfernen Sie eine, bevor Sie eine weitere hinzufügen.",
        store_unavailable: "Die Zwei-Faktor-Authentifizierung ist gerade nicht verfügbar. Versuchen Sie es gleich noch einmal.",
        cross_origin: "Diese Änderung kam von einer Seite einer anderen Website und wurde abgelehnt. Öffnen Sie die Seite dieser Website und versuchen Sie es dort erneut.",
        not_found: "Diese Seite gibt es nicht.",
        other_refusal: "Die Anfrage konnte nicht bearbeitet werden.",
    };

    /// The sentence a page shows for `reason`.
    pub fn refusal(&self, reason: RefusalReason) -> &'static str {
        match reason {
            RefusalReason::NotLoggedIn | RefusalReason::LoginRequired => self.login_required,
            RefusalReason::SecondStepRequired => self.second_step_required,
            RefusalReason::EnrollmentRequired => self.enrollment_required,
            RefusalReason::StepExpired => self.step_expired,
            RefusalReason::StepUpRequired => self.step_up_required,
            RefusalReason::CodeRejected(RejectReason::Malformed) => self.code_malformed,
            RefusalReason::CodeRejected(RejectReason::Replayed) => self.code_replayed,
            RefusalReason::CodeRejected(RejectReason::NotEnrolled) => self.not_enrolled,
            RefusalReason::CodeRejected(RejectReason::NoPendingEnrollment) => {
                self.no_pending_enrollment
            }
            RefusalReason::CodeRejected(RejectReason::Throttled { .. }) => self.throttled,
            RefusalReason::CodeRejected(_) => self.code_invalid,
            RefusalReason::TooManyPendingEnrollments => self.too_many_pending_enrollments,
            RefusalReason::TooManyAuthenticators => self.too_many_authenticators,
            RefusalReason::StoreUnavailable => self.store_unavailable,
            RefusalReason::CrossOrigin => self.cross_origin,
            RefusalReason::NotFound => self.not_found,
            // English keeps the precise sentence of the problem detail.
            _ if self.lang == "en" => reason.detail(),
            _ => self.other_refusal,
        }
    }
}

/// The tables a service offers, by language tag, English always among
/// them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Languages {
    /// Lower-case tag and table; English first.
    tables: Vec<(String, Arc<Strings>)>,
}

impl Default for Languages {
    fn default() -> Self {
        Self {
            tables: vec![
                ("en".into(), Arc::new(Strings::ENGLISH)),
                ("de".into(), Arc::new(Strings::GERMAN)),
            ],
        }
    }
}

impl Languages {
    /// Add or replace the table for `tag` (`fr`, `pt-BR`; case does not
    /// matter).
    pub fn add(&mut self, tag: &str, strings: Strings) {
        let tag = tag.trim().to_ascii_lowercase();
        let table = Arc::new(strings);
        match self.tables.iter_mut().find(|(t, _)| *t == tag) {
            Some(slot) => slot.1 = table,
            None => self.tables.push((tag, table)),
        }
    }

    /// The table for a request: the `Accept-Language` ranges by q-value
    /// (the order sent among equals), each matched exactly, then by its
    /// primary subtag (`de-CH` finds `de`); `q=0` ranges are skipped;
    /// English when nothing matches.
    pub fn pick(&self, headers: &HeaderMap) -> Arc<Strings> {
        let mut ranges: Vec<(String, u16)> = headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(parse_range)
            .filter(|(_, q)| *q > 0)
            .collect();
        // Stable: equal q-values keep the client's order.
        ranges.sort_by_key(|r| std::cmp::Reverse(r.1));
        for (range, _) in &ranges {
            if let Some(table) = self.find(range) {
                return table;
            }
        }
        self.english()
    }

    fn find(&self, range: &str) -> Option<Arc<Strings>> {
        if range == "*" {
            return Some(self.english());
        }
        let exact = self.tables.iter().find(|(t, _)| t == range);
        let primary = range.split('-').next().unwrap_or(range);
        exact
            .or_else(|| self.tables.iter().find(|(t, _)| t == primary))
            .map(|(_, s)| Arc::clone(s))
    }

    fn english(&self) -> Arc<Strings> {
        self.tables
            .iter()
            .find(|(t, _)| t == "en")
            .map_or_else(|| Arc::new(Strings::ENGLISH), |(_, s)| Arc::clone(s))
    }
}

/// One `Accept-Language` range: lower-case tag and q-value in thousandths.
fn parse_range(item: &str) -> Option<(String, u16)> {
    let mut parts = item.split(';');
    let tag = parts.next()?.trim().to_ascii_lowercase();
    if tag.is_empty() || tag.len() > 35 {
        return None;
    }
    let mut q = 1000;
    for p in parts {
        if let Some(v) = p.trim().strip_prefix("q=") {
            let v: f32 = v.trim().parse().ok()?;
            if !(0.0..=1.0).contains(&v) {
                return None;
            }
            q = (v * 1000.0).round() as u16;
        }
    }
    Some((tag, q))
}

/// Replace `{key}` in `template` by `value`.
pub(crate) fn fill(template: &str, key: &str, value: &str) -> String {
    template.replace(&format!("{{{key}}}"), value)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn pick(value: &str) -> &'static str {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(value).unwrap(),
        );
        Languages::default().pick(&h).lang
    }

    #[test]
    fn q_values_and_primary_subtags_choose() {
        assert_eq!(pick("de"), "de");
        assert_eq!(pick("de-CH;q=0.9, en;q=0.8"), "de");
        assert_eq!(pick("en;q=0.5, de;q=0.9"), "de");
        assert_eq!(pick("fr"), "en");
        assert_eq!(pick("fr, de;q=0.1"), "de");
        assert_eq!(pick("de;q=0, fr"), "en");
        assert_eq!(pick("*;q=0.9, de;q=0.2"), "en");
        assert_eq!(pick("de;q=nonsense"), "en");
        assert_eq!(Languages::default().pick(&HeaderMap::new()).lang, "en");
    }
}
