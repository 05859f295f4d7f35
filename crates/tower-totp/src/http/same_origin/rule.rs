//! The rule of [`SameOriginLayer`](super::SameOriginLayer): which requests
//! are cross-origin state changes, and the origins it compares.

use http::{HeaderMap, Method, Uri, header};

use crate::ConfigError;

/// `Sec-Fetch-Site` (Fetch Metadata); not among `http`'s constants.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// A host and port, lowercased, as `Host`, an `:authority` or the tail of
/// an origin spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    host: String,
    /// Only an explicit port: a `Host` without one says nothing about the
    /// scheme it was reached by.
    port: Option<u16>,
}

impl HostPort {
    /// `host[:port]` with a DNS name, an IPv4 address or a bracketed IPv6
    /// address; nothing else (no user info, path or empty port).
    fn parse(s: &str) -> Option<Self> {
        let (host, port) = if let Some(bracketed) = s.strip_prefix('[') {
            let (inner, rest) = bracketed.split_once(']')?;
            let valid = !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
            if !valid {
                return None;
            }
            let port = match rest {
                "" => None,
                r => Some(r.strip_prefix(':')?),
            };
            (&s[..inner.len() + 2], port)
        } else {
            match s.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            }
        };
        let host_ok = host.starts_with('[')
            || (!host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')));
        if !host_ok {
            return None;
        }
        let port = match port {
            None => None,
            Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().ok()?)
            }
            Some(_) => return None,
        };
        Some(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// An origin, `scheme://host[:port]` (RFC 6454), with its port made
/// explicit when the scheme has a default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parse an origin as browsers serialise it: a scheme, `://`, a host
    /// and maybe a port; no path (not even `/`), query or user info.
    /// `null` (an opaque origin) is not one.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let HostPort { host, port } = HostPort::parse(rest)?;
        let port = port.or_else(|| default_port(&scheme));
        Some(Self { scheme, host, port })
    }

    /// Whether this origin names the host and port the request was sent
    /// to, whatever the scheme (`SameOriginLayer`'s docs say why).
    fn is_at(&self, target: &HostPort) -> bool {
        self.host == target.host
            && match target.port {
                Some(port) => self.port == Some(port),
                // No port in `Host`: the scheme's default port, as the
                // browser leaves it out exactly then.
                None => self.port == default_port(&self.scheme),
            }
    }
}

/// The default port of the schemes a browser posts forms from.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Which origins are the service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnOrigins {
    /// The host and port the request was sent to (`:authority`, else `Host`).
    FromHost,
    /// Exactly these (scheme compared too).
    Listed(Vec<Origin>),
}

impl OwnOrigins {
    /// The configured list, each checked.
    pub(crate) fn listed<I, T>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let list = origins
            .into_iter()
            .map(|o| {
                let o = o.as_ref();
                Origin::parse(o).ok_or_else(|| ConfigError::Origin(o.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Listed(list))
    }
}

/// Why a request was refused (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrossOrigin {
    /// `Sec-Fetch-Site: cross-site` or `same-site`.
    FetchSite,
    /// An `Origin` that is not one of the service's own (`null` included).
    Origin,
}

/// Safe methods change nothing and pass whatever their headers.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The decision for one request: `Some` refuses it.
pub(crate) fn check(
    own: &OwnOrigins,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<CrossOrigin> {
    if is_safe(method) {
        return None;
    }
    // Every copy counts: a second header must not hide the first.
    let fetch_site_foreign = headers.get_all(SEC_FETCH_SITE).iter().any(|v| {
        let v = v.as_bytes();
        v.eq_ignore_ascii_case(b"cross-site") || v.eq_ignore_ascii_case(b"same-site")
    });
    if fetch_site_foreign {
        return Some(CrossOrigin::FetchSite);
    }
    let mut origins = headers.get_all(header::ORIGIN).iter().peekable();
    // Neither header: not a browser's cross-origin request (curl, another
    // server), or a browser too old to say; the session cookie's SameSite
    // is the defence left for those.
    origins.peek()?;
    let target = match own {
        OwnOrigins::FromHost => Some(target(uri, headers)),
        OwnOrigins::Listed(_) => None,
    };
    let all_own = origins.all(|v| {
        let Some(origin) = v.to_str().ok().and_then(Origin::parse) else {
            // `null`, or not an origin at all.
            return false;
        };
        match (own, &target) {
            (OwnOrigins::Listed(list), _) => list.contains(&origin),
            (OwnOrigins::FromHost, Some(Some(t))) => origin.is_at(t),
            // No usable `Host`: nothing is our own origin.
            (OwnOrigins::FromHost, _) => false,
        }
    });
    (!all_own).then_some(CrossOrigin::Origin)
}

/// Where the request was sent: the URI's authority (HTTP/2's `:authority`,
/// or an absolute-form HTTP/1.1 target, which takes precedence over
/// `Host` by RFC 9112), else the `Host` header (one, no more).
fn target(uri: &Uri, headers: &HeaderMap) -> Option<HostPort> {
    if let Some(authority) = uri.authority() {
        return HostPort::parse(authority.as_str());
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next()?;
    if hosts.next().is_some() {
        return None;
    }
    HostPort::parse(host.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_strictly() {
        let o = Origin::parse("HTTPS://App.Example.com").unwrap();
        assert_eq!(
            o,
            Origin {
                scheme: "https".into(),
                host: "app.example.com".into(),
                port: Some(443),
            }
        );
        assert_eq!(Origin::parse("http://[::1]:3000").unwrap().port, Some(3000));
        assert_eq!(Origin::parse("http://127.0.0.1").unwrap().port, Some(80));
        for bad in [
            "null",
            "",
            "example.com",
            "//example.com",
            "https://",
            "https://example.com/",
            "https://example.com/path",
            "https://example.com?q",
            "https://example.com#f",
            "https://user@example.com",
            "https://example.com:",
            "https://example.com:99999",
            "https://example.com:8x",
            "https://exa mple.com",
            "https://[::1",
            "https://[]:80",
            "https://[::1]x",
            "1http://example.com",
            "https://a:b:c",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts_parse_strictly() {
        assert_eq!(
            HostPort::parse("Example.com:8080"),
            Some(HostPort {
                host: "example.com".into(),
                port: Some(8080)
            })
        );
        assert_eq!(HostPort::parse("[::1]").unwrap().port, None);
        for bad in ["", ":80", "a.com:", "a@b.com", "a.com/x", "a.com:70000"] {
            assert_eq!(HostPort::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_listed_origin_must_be_one() {
        assert!(OwnOrigins::listed(["https://a.example", "http://localhost:3000"]).is_ok());
        assert_eq!(
            OwnOrigins::listed(["https://a.example", "https://a.example/"]),
            Err(ConfigError::Origin("https://a.example/".into()))
        );
        assert!(OwnOrigins::listed(["null"]).is_err());
        assert!(OwnOrigins::listed(["a.example"]).is_err());
    }

    const SAFE: [Method; 3] = [Method::GET, Method::HEAD, Method::OPTIONS];

    fn unsafe_methods() -> Vec<Method> {
        vec![
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::TRACE,
            Method::CONNECT,
            Method::from_bytes(b"PROPFIND").unwrap(),
        ]
    }

    /// `Origin` values against a service at `app.example:8443` (by `Host`),
    /// and whether each is the service's own.
    const ORIGINS: [(Option<&str>, bool); 9] = [
        (None, true),
        (Some("https://app.example:8443"), true),
        // Scheme not compared: the service cannot know its own.
        (Some("http://app.example:8443"), true),
        (Some("https://APP.example:8443"), true),
        (Some("https://app.example"), false),
        (Some("https://app.example:8444"), false),
        (Some("https://evil.example:8443"), false),
        (Some("https://sub.app.example:8443"), false),
        (Some("null"), false),
    ];

    const FETCH_SITES: [(Option<&str>, bool); 6] = [
        (None, true),
        (Some("same-origin"), true),
        (Some("none"), true),
        (Some("same-site"), false),
        (Some("cross-site"), false),
        (Some("CROSS-SITE"), false),
    ];

    fn headers(host: Option<&str>, origin: Option<&str>, site: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, v.parse().unwrap());
        }
        if let Some(v) = site {
            h.insert(SEC_FETCH_SITE, v.parse().unwrap());
        }
        h
    }

    /// The whole table: every method, every `Origin`, every
    /// `Sec-Fetch-Site`.
    #[test]
    fn the_rule_table() {
        let uri = Uri::from_static("/admin/settings");
        let mut refused = 0;
        for method in SAFE.iter().cloned().chain(unsafe_methods()) {
            for (origin, origin_own) in ORIGINS {
                for (site, site_ok) in FETCH_SITES {
                    let h = headers(Some("app.example:8443"), origin, site);
                    let got = check(&OwnOrigins::FromHost, &method, &uri, &h);
                    let expected = if is_safe(&method) {
                        None
                    } else if !site_ok {
                        Some(CrossOrigin::FetchSite)
                    } else if !origin_own {
                        Some(CrossOrigin::Origin)
                    } else {
                        None
                    };
                    assert_eq!(
                        got, expected,
                        "{method} Origin {origin:?} Sec-Fetch-Site {site:?}"
                    );
                    refused += usize::from(got.is_some());
                }
            }
        }
        // 7 unsafe methods × (9 × 6 combinations − 4 × 3 that pass).
        assert_eq!(refused, 7 * (9 * 6 - 4 * 3));
    }

    #[test]
    fn a_host_without_port_is_the_schemes_default_port() {
        let uri = Uri::from_static("/");
        let own = |origin: &str, host: &str| {
            check(
                &OwnOrigins::FromHost,
                &Method::POST,
                &uri,
                &headers(Some(host), Some(origin), None),
            )
            .is_none()
        };
        assert!(own("https://app.example", "app.example"));
        assert!(own("http://app.example", "app.example"));
        assert!(own("https://app.example:443", "app.example"));
        assert!(own("https://app.example", "app.example:443"));
        assert!(!own("https://app.example:8443", "app.example"));
        assert!(!own("http://app.example", "app.example:443"));
        assert!(own("http://[::1]:3000", "[::1]:3000"));
        assert!(own("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(!own("http://127.0.0.1:3001", "127.0.0.1:3000"));
    }

    #[test]
    fn without_a_usable_host_no_origin_is_own() {
        let uri = Uri::from_static("/");
        for host in [None, Some("bad host"), Some("a@app.example")] {
            let h = headers(host, Some("https://app.example"), None);
            assert_eq!(
                check(&OwnOrigins::FromHost, &Method::POST, &uri, &h),
                Some(CrossOrigin::Origin),
                "{host:?}"
            );
        }
        let mut two = headers(Some("app.example"), Some("https://app.example"), None);
        two.append(header::HOST, "evil.example".parse().unwrap());
        assert!(check(&OwnOrigins::FromHost, &Method::POST, &uri, &two).is_some());
        // No Origin at all: passes, Host or not.
        assert_eq!(
            check(
                &OwnOrigins::FromHost,
                &Method::POST,
                &uri,
                &headers(None, None, None)
            ),
            None
        );
    }

    #[test]
    fn the_uri_authority_is_the_target_when_there_is_one() {
        // HTTP/2: `:authority` is in the URI, and `Host` may be missing.
        let uri = Uri::from_static("https://app.example:8443/admin");
        let h = headers(None, Some("https://app.example:8443"), None);
        assert_eq!(check(&OwnOrigins::FromHost, &Method::POST, &uri, &h), None);
        // A `Host` that disagrees does not make another origin our own.
        let h = headers(Some("evil.example"), Some("https://evil.example"), None);
        assert!(check(&OwnOrigins::FromHost, &Method::POST, &uri, &h).is_some());
    }

    #[test]
    fn every_copy_of_a_header_counts() {
        let uri = Uri::from_static("/");
        let mut h = headers(
            Some("app.example"),
            Some("https://app.example"),
            Some("same-origin"),
        );
        h.append(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert_eq!(
            check(&OwnOrigins::FromHost, &Method::POST, &uri, &h),
            Some(CrossOrigin::Origin)
        );
        let mut h = headers(Some("app.example"), None, Some("same-origin"));
        h.append(SEC_FETCH_SITE, "cross-site".parse().unwrap());
        assert_eq!(
            check(&OwnOrigins::FromHost, &Method::POST, &uri, &h),
            Some(CrossOrigin::FetchSite)
        );
    }

    #[test]
    fn listed_origins_replace_the_host_and_compare_the_scheme() {
        let own =
            OwnOrigins::listed(["https://app.example", "https://admin.example:8443"]).unwrap();
        let uri = Uri::from_static("/");
        let verdict = |origin: &str, host: &str| {
            check(
                &own,
                &Method::POST,
                &uri,
                &headers(Some(host), Some(origin), None),
            )
        };
        assert_eq!(verdict("https://app.example", "internal:3000"), None);
        assert_eq!(verdict("https://app.example:443", "internal:3000"), None);
        assert_eq!(verdict("https://admin.example:8443", "internal:3000"), None);
        assert!(verdict("http://app.example", "app.example").is_some());
        assert!(verdict("https://admin.example", "admin.example").is_some());
        // The Host no longer counts.
        assert!(verdict("http://internal:3000", "internal:3000").is_some());
        // Sec-Fetch-Site still does.
        let h = headers(None, Some("https://app.example"), Some("same-site"));
        assert_eq!(
            check(&own, &Method::POST, &uri, &h),
            Some(CrossOrigin::FetchSite)
        );
    }
}
