//! `[network.portal]`: networks that want a sign-in before anything passes
//! (hotels, trains, guest networks). The person opens their sign-in page in a
//! throwaway browser, before the tunnel only (docs/portal.md).

use serde::Deserialize;
use stick_manifest::network::{Ipv4Net, PortalPolicy, PORTAL_LINK};

/// `[network.portal]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PortalSection {
    /// A plain `http://` page the portal browser opens first, such as
    /// `http://portal-check.example.org/`: a network that wants a sign-in
    /// answers it with its sign-in page. Plain HTTP on purpose: a portal cannot
    /// redirect HTTPS without a certificate error.
    pub start_page: String,
}

impl PortalSection {
    /// Checks the start page: `http://`, a host (name or IPv4 outside the
    /// inner networks and the portal's own link), no user or password.
    pub fn policy(
        &self,
        inner_networks: &[Ipv4Net],
    ) -> Result<PortalPolicy, (&'static str, String)> {
        const KEY: &str = "network.portal.start-page";
        let page = self.start_page.trim();
        let Some(rest) = page.strip_prefix("http://") else {
            return Err((
                KEY,
                format!(
                    "{page:?} is not a plain http:// URL: a portal can only answer an \
                     unencrypted request, such as \"http://portal-check.example.org/\""
                ),
            ));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err((
                KEY,
                format!("{page:?} carries a user or password: leave them out"),
            ));
        }
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            });
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err((
                KEY,
                format!("{page:?} names no host such as portal-check.example.org"),
            ));
        }
        if let Ok(address) = host.parse::<std::net::Ipv4Addr>() {
            if let Some(net) = inner_networks
                .iter()
                .chain(std::iter::once(&PORTAL_LINK))
                .find(|net| net.contains(address))
            {
                return Err((
                    KEY,
                    format!(
                        "{address} lies in {net}: the start page must be out on the PC's network"
                    ),
                ));
            }
        }
        Ok(PortalPolicy {
            start_page: page.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_pages() {
        let inner: Vec<Ipv4Net> = vec!["10.99.0.0/24".parse().expect("a network")];
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "http://portal-check.example.org/",
                Ok("http://portal-check.example.org/"),
            ),
            (
                "  http://portal.test:8080/x?y  ",
                Ok("http://portal.test:8080/x?y"),
            ),
            ("http://192.0.2.7/", Ok("http://192.0.2.7/")),
            ("https://portal.test/", Err("not a plain http:// URL")),
            ("portal.test", Err("not a plain http:// URL")),
            ("http://user:pw@portal.test/", Err("user or password")),
            ("http:///path", Err("names no host")),
            ("http://por tal/", Err("names no host")),
            ("http://10.99.0.10/", Err("lies in 10.99.0.0/24")),
            ("http://100.127.255.253/", Err("lies in 100.127.255.252/30")),
        ];
        for (page, expected) in cases {
            let got = PortalSection {
                start_page: page.to_string(),
            }
            .policy(&inner);
            match (expected, got) {
                (Ok(want), Ok(policy)) => assert_eq!(policy.start_page, *want, "{page}"),
                (Err(part), Err((key, message))) => {
                    assert_eq!(key, "network.portal.start-page");
                    assert!(message.contains(part), "{page}: {message}");
                }
                (expected, got) => panic!("{page}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
