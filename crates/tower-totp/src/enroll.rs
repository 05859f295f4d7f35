//! Enrollment material: the otpauth URI in Google's Key URI format and its
//! QR code, as SVG and PNG.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use zeroize::Zeroizing;

use crate::code::{CodeParams, Secret};
use crate::store::AuthenticatorId;

/// Characters left as they are in the URI: RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Pixels per QR module in the PNG, and modules of quiet zone around it.
const PNG_SCALE: usize = 6;
const QUIET_ZONE: usize = 4;

/// Longest authenticator name kept, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt,
/// the same ranges since Unicode 6.1): code points a renderer shows as
/// nothing. Most are format characters (`Cf`, stripped anyway); the rest
/// are the reason for this list: the Hangul fillers (U+115F, U+1160,
/// U+3164, U+FFA0, letters that draw nothing, so a name of them looks
/// blank), the combining grapheme joiner, variation selectors (an emoji
/// loses its U+FE0F presentation hint, nothing more), and the unassigned
/// code points reserved as ignorable. `unicode-properties` has no table of
/// this property, hence the list; a unit test checks it against ICU's.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

fn is_default_ignorable(c: char) -> bool {
    DEFAULT_IGNORABLE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Characters a name loses: controls and format characters (`Cc`, `Cf`:
/// bidi overrides, zero-width characters), line and paragraph separators
/// (`Zl`, `Zp`: line breaks by another name; a name is one line), and
/// whatever renders as nothing. The tab is a control, but white space.
fn is_stripped(c: char) -> bool {
    let stripped_category = matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    );
    (stripped_category && c != '\t') || is_default_ignorable(c)
}

/// White space kept as one plain space: the tab and the space separators
/// (`Zs`: no-break, ideographic, em, thin spaces...).
fn is_space(c: char) -> bool {
    c == '\t' || c.general_category() == GeneralCategory::SpaceSeparator
}

/// An authenticator name as it is kept and shown, on one line and without
/// anything invisible: Unicode control, format, line and paragraph
/// separator characters (general categories Cc, Cf, Zl, Zp: bidi overrides
/// such as U+202E, zero-width characters, the BOM, U+2028, U+2029) and the
/// other `Default_Ignorable_Code_Point` characters (the Hangul fillers
/// U+3164, U+115F, U+1160, U+FFA0, variation selectors) removed; each run
/// of white space (tabs, `Zs` such as U+00A0 or U+3000) one plain space;
/// trimmed; at most [`MAX_NAME_CHARS`] characters. Every name that enters
/// the library passes through here
/// ([`TwoFactor::start_enrollment`](crate::TwoFactor::start_enrollment)).
///
/// ```
/// use tower_totp::enroll::clean_name;
///
/// assert_eq!(clean_name("Pixel\u{202E}8\u{200B}\n"), "Pixel8");
/// assert_eq!(clean_name("  Authy\u{2028}on\t\u{3000}iPad\u{3164} "), "Authyon iPad");
/// ```
pub fn clean_name(name: &str) -> String {
    let spaced: String = name
        .chars()
        .filter(|&c| !is_stripped(c))
        .map(|c| if is_space(c) { ' ' } else { c })
        .collect();
    let folded = spaced
        .split(' ')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Cutting may leave a space at the end.
    let cut: String = folded.chars().take(MAX_NAME_CHARS).collect();
    cut.trim_end().to_owned()
}

/// A pending enrollment as shown to the user: secret, URI and QR code.
///
/// It holds the secret; `Debug` prints neither it nor the URI.
#[derive(Clone)]
pub struct Enrollment {
    id: AuthenticatorId,
    name: String,
    secret: Secret,
    params: CodeParams,
    uri: Zeroizing<String>,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Enrollment {
    /// Enrollment material for `secret`, labelled `issuer:account`.
    pub fn new(
        id: AuthenticatorId,
        name: String,
        secret: Secret,
        params: CodeParams,
        issuer: &str,
        account: &str,
    ) -> Self {
        let uri = Zeroizing::new(otpauth_uri(&secret, params, issuer, account));
        Self {
            id,
            name,
            secret,
            params,
            uri,
        }
    }

    /// The id the authenticator will have once confirmed.
    pub fn id(&self) -> &AuthenticatorId {
        &self.id
    }

    /// The authenticator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The code parameters.
    pub fn params(&self) -> CodeParams {
        self.params
    }

    /// The shared secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The secret in base32, grouped by four for typing into an app by hand.
    pub fn secret_for_manual_entry(&self) -> Zeroizing<String> {
        let b32 = self.secret.to_base32();
        let mut out = Zeroizing::new(String::with_capacity(b32.len() * 5 / 4));
        for (i, c) in b32.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }

    /// The `otpauth://totp/...` URI.
    pub fn otpauth_uri(&self) -> &str {
        &self.uri
    }

    /// The QR code of the URI as an SVG document.
    pub fn qr_svg(&self) -> String {
        let code = self.qr();
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build()
    }

    /// The QR code of the URI as a greyscale PNG.
    pub fn qr_png(&self) -> Vec<u8> {
        let code = self.qr();
        let modules = code.width();
        let colors = code.to_colors();
        let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
        let mut pixels = vec![255u8; side * side];
        for (i, color) in colors.iter().enumerate() {
            if *color != qrcode::Color::Dark {
                continue;
            }
            let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
            for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
                pixels[y * side + mx * PNG_SCALE..y * side + (mx + 1) * PNG_SCALE].fill(0);
            }
        }
        encode_png(&pixels, side)
    }

    fn qr(&self) -> QrCode {
        // A URI of a few hundred bytes always fits a QR code at level M, so
        // this only fails for a label far beyond any sane length; fall back to
        // the lowest correction level, which holds 2,953 bytes.
        QrCode::with_error_correction_level(self.uri.as_bytes(), EcLevel::M)
            .or_else(|_| QrCode::with_error_correction_level(self.uri.as_bytes(), EcLevel::L))
            .unwrap_or_else(|_| {
                #[allow(clippy::expect_used)]
                QrCode::new(b"otpauth label too long").expect("a short text always fits")
            })
    }
}

fn encode_png(pixels: &[u8], side: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let side_u32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing into a Vec with correct dimensions cannot fail.
    #[allow(clippy::expect_used)]
    {
        let mut writer = encoder.write_header().expect("PNG header into a Vec");
        writer
            .write_image_data(pixels)
            .expect("PNG data into a Vec");
    }
    out
}

/// Google's Key URI format:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=...&digits=...&period=...`,
/// with issuer and account percent-encoded.
pub fn otpauth_uri(secret: &Secret, params: CodeParams, issuer: &str, account: &str) -> String {
    let issuer_enc = utf8_percent_encode(issuer, COMPONENT);
    format!(
        "otpauth://totp/{issuer_enc}:{account}?secret={secret}&issuer={issuer_enc}&algorithm={alg}&digits={digits}&period={period}",
        account = utf8_percent_encode(account, COMPONENT),
        secret = &*secret.to_base32(),
        alg = params.algorithm(),
        digits = params.digits(),
        period = params.period(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{Algorithm, Hotp};

    fn sample() -> Enrollment {
        Enrollment::new(
            AuthenticatorId::new("00"),
            "phone".into(),
            Secret::from_bytes(b"12345678901234567890").unwrap(),
            CodeParams::default(),
            "Acme Corp",
            "jsmith@example.com",
        )
    }

    #[test]
    fn names_lose_control_and_format_characters() {
        // Cc: C0, DEL, C1. Cf: soft hyphen, Arabic letter mark, bidi
        // embeddings, overrides and isolates, zero-width space, joiners,
        // word joiner, BOM, a tag character.
        for bad in [
            '\u{0}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{ad}',
            '\u{61c}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert_eq!(clean_name(&format!("a{bad}b")), "ab", "{:?}", bad);
        }
        assert_eq!(clean_name("Pixel 8 — ünïcode 📱"), "Pixel 8 — ünïcode 📱");
        assert_eq!(clean_name(&"x".repeat(100)).len(), MAX_NAME_CHARS);
        assert_eq!(clean_name("\u{202e} \u{200b}"), "");
    }

    #[test]
    fn names_lose_line_and_paragraph_separators() {
        // Zl and Zp: a name is one line, whatever breaks it.
        assert_eq!(clean_name("A\u{2028}B"), "AB");
        assert_eq!(clean_name("A\u{2029}B"), "AB");
        assert_eq!(clean_name("\u{2028}A\u{2029}"), "A");
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if matches!(
                c.general_category(),
                GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
            ) {
                assert_eq!(clean_name(&format!("a{c}b")), "ab", "{c:?}");
            }
        }
    }

    #[test]
    fn names_lose_invisible_fillers() {
        // Letters (Lo) and marks (Mn) that draw nothing: a name made of
        // them looks blank, one with them looks like another name.
        for filler in [
            '\u{115f}',
            '\u{1160}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{34f}',
            '\u{17b4}',
            '\u{180b}',
            '\u{fe0f}',
            '\u{e0100}',
            '\u{1bca0}',
            '\u{1d173}',
            '\u{2065}',
            '\u{fff0}',
        ] {
            assert_eq!(clean_name(&format!("a{filler}b")), "ab", "{filler:?}");
        }
        assert_eq!(clean_name("\u{3164}\u{3164}"), "");
    }

    #[test]
    fn the_ignorable_list_is_unicodes_default_ignorable_code_point() {
        use icu_properties::CodePointSetData;
        use icu_properties::props::DefaultIgnorableCodePoint;
        let unicode = CodePointSetData::new::<DefaultIgnorableCodePoint>();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(is_default_ignorable(c), unicode.contains(c), "{c:?}");
            if unicode.contains(c) {
                assert_eq!(clean_name(&format!("a{c}b")), "ab", "{c:?}");
            }
        }
    }

    #[test]
    fn names_fold_white_space_to_single_spaces() {
        assert_eq!(clean_name("a\tb"), "a b");
        assert_eq!(clean_name("a \t\u{3000}\u{a0} b"), "a b");
        for space in [
            '\u{a0}', '\u{1680}', '\u{2003}', '\u{2009}', '\u{202f}', '\u{205f}', '\u{3000}',
        ] {
            assert_eq!(clean_name(&format!("a{space}{space}b")), "a b", "{space:?}");
        }
        // A separator between two spaces leaves one space, not two.
        assert_eq!(clean_name("a \u{2028} b"), "a b");
        assert_eq!(clean_name("a \u{200b} b"), "a b");
    }

    #[test]
    fn names_are_trimmed_then_cut_without_a_trailing_space() {
        assert_eq!(clean_name("\t\u{a0} Work phone \u{3000}\t"), "Work phone");
        assert_eq!(clean_name(" \u{2029}\u{3164} "), "");
        let long = format!("{} {}", "x".repeat(MAX_NAME_CHARS - 1), "y".repeat(10));
        assert_eq!(clean_name(&long), "x".repeat(MAX_NAME_CHARS - 1));
        let exact = "é".repeat(MAX_NAME_CHARS + 5);
        assert_eq!(clean_name(&exact).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn uri_follows_the_key_uri_format() {
        assert_eq!(
            sample().otpauth_uri(),
            "otpauth://totp/Acme%20Corp:jsmith%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn totp_rs_reads_our_uri_and_agrees_on_codes() {
        let params = CodeParams::new(Algorithm::Sha256, 8, 60).unwrap();
        let secret = Secret::generate();
        let uri = otpauth_uri(&secret, params, "Acme", "ann");
        let theirs = totp_rs::Totp::from_url(&uri).unwrap();
        assert_eq!(theirs.digits(), 8);
        assert_eq!(theirs.step(), 60);
        assert_eq!(theirs.issuer(), Some("Acme"));
        assert_eq!(theirs.account_name(), "ann");
        let ours = Hotp::new(&secret, params);
        assert_eq!(
            theirs.generate(1_234_567_890).to_string(),
            ours.code_string(1_234_567_890 / 60)
        );
    }

    #[test]
    fn png_decodes_back_to_the_uri() {
        let e = sample();
        let png_bytes = e.qr_png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, e.otpauth_uri());
    }

    #[test]
    fn svg_is_an_svg_and_debug_hides_the_secret() {
        let e = sample();
        assert!(e.qr_svg().contains("<svg"));
        let debug = format!("{e:?}");
        assert!(!debug.contains("GEZD"), "{debug}");
        assert_eq!(
            &*e.secret_for_manual_entry(),
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
        );
    }
}
