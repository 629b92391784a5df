//! `https://` URLs as the config names them: the VPN's check URL and the conference.
//! Only what the stick needs: a host (name or IPv4 address), a port and a path;
//! no user info, no IPv6 literals, no whitespace.

/// Host, port and path (with its query) of an `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Lowercase host name or IPv4 address.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; includes the query, not the fragment.
    pub path: String,
}

/// Why a text is not an acceptable `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?}: only https:// URLs are allowed")]
    NotHttps(String),
    #[error("{0:?} has no host: write it as \"https://conference.example/\"")]
    NoHost(String),
    #[error(
        "{0:?}: user names, passwords, IPv6 literals and whitespace are not allowed in the URL"
    )]
    Forbidden(String),
    #[error("{0:?}: the port must be a number from 1 to 65535")]
    BadPort(String),
    #[error("{0:?}: the host may hold only letters, digits, `-` and `.`")]
    BadHost(String),
}

impl HttpsUrl {
    pub fn parse(url: &str) -> Result<HttpsUrl, UrlError> {
        let owned = || url.to_string();
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| UrlError::NotHttps(owned()))?;
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Forbidden(owned()));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains(['@', '[', ']']) {
            return Err(UrlError::Forbidden(owned()));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| UrlError::BadPort(owned()))?,
            ),
            None => (authority, 443),
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(owned()));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(UrlError::BadHost(owned()));
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(HttpsUrl {
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// The web origin as browsers write it: `https://host`, or `https://host:port`
    /// when the port is not 443.
    pub fn origin(&self) -> String {
        if self.port == 443 {
            format!("https://{}", self.host)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }

    /// The host as an IPv4 address, when it is one.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.host.parse().ok()
    }
}

impl std::fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        type Parts<'a> = Result<(&'a str, u16, &'a str, &'a str), &'a str>;
        let cases: &[(&str, Parts)] = &[
            (
                "https://10.99.0.10/",
                Ok(("10.99.0.10", 443, "/", "https://10.99.0.10")),
            ),
            (
                "https://10.99.0.10",
                Ok(("10.99.0.10", 443, "/", "https://10.99.0.10")),
            ),
            (
                "https://Conf.Test:8443/health?x=1#top",
                Ok(("conf.test", 8443, "/health?x=1", "https://conf.test:8443")),
            ),
            (
                "https://conf.test?room=1",
                Ok(("conf.test", 443, "/?room=1", "https://conf.test")),
            ),
            ("http://10.99.0.10/", Err("NotHttps")),
            ("https:///", Err("NoHost")),
            ("https://h:port/", Err("BadPort")),
            ("https://h:0/", Err("BadPort")),
            ("https://h:70000/", Err("BadPort")),
            ("https://user@conf.test/", Err("Forbidden")),
            ("https://[::1]/", Err("Forbidden")),
            ("https://conf.test/a b", Err("Forbidden")),
            ("https://conf_test/", Err("BadHost")),
        ];
        for (text, want) in cases {
            let got = HttpsUrl::parse(text)
                .map(|u| {
                    let origin = u.origin();
                    (u.host, u.port, u.path, origin)
                })
                .map_err(|e| format!("{e:?}"));
            match (got, want) {
                (Ok(got), Ok((h, p, path, origin))) => assert_eq!(
                    got,
                    (h.to_string(), *p, path.to_string(), origin.to_string()),
                    "{text}"
                ),
                (Err(got), Err(kind)) => assert!(got.starts_with(kind), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
