//! Keys of an auth file read as registry patterns, and the kubelet's rule for
//! matching them against an image.
//!
//! A key is a host (`quay.io`), a host with port (`registry:5000`), either of
//! those with a path prefix (`quay.io/team`), a URL of any of those
//! (`https://quay.io/v1/`), or a host with `*` in some labels
//! (`*.example.com`). Hosts compare label by label, `*` never crossing a dot;
//! a port must be equal on both sides (no port matches only no port); the
//! path of the key must be a prefix of the image's path.
//!
//! Two deliberate differences from the kubelet, both stricter or harmless:
//! the path prefix matches on `/` boundaries only (the kubelet's plain string
//! prefix would send `quay.io/team`'s credential to `quay.io/teamster`), and
//! host names compare without regard to ASCII case, as DNS does.

use std::cmp::Ordering;
use std::net::Ipv6Addr;

use super::error::KeyProblem;

/// The host Docker Hub images are normalised to.
const HUB_HOST: &str = "docker.io";

/// Docker Hub's legacy name, found in keys such as
/// `https://index.docker.io/v1/`; it means the same registry.
const HUB_LEGACY_HOST: &str = "index.docker.io";

/// A parsed key: host labels (globs allowed), port and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    labels: Vec<String>,
    port: Option<u16>,
    /// Path prefix without trailing `/`; empty for a whole registry.
    path: String,
}

/// Where an image is pulled from, in the shape keys are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    labels: Vec<String>,
    port: Option<u16>,
    /// `/` followed by the repository.
    path: String,
}

impl KeyPattern {
    /// Reads a key the way the kubelet does: an optional `http(s)://`, a
    /// host, and a path from which a leading `/v1/` or `/v2/` (the API
    /// version Docker writes into its URL keys) is dropped.
    pub(crate) fn parse(key: &str) -> Result<Self, KeyProblem> {
        if key.contains('@') {
            return Err(KeyProblem::UserInfo);
        }
        let rest = strip_scheme(key)?;
        if rest.contains(['?', '#']) {
            return Err(KeyProblem::QueryOrFragment);
        }

        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let (labels, port) = parse_authority(authority, true)?;

        Ok(Self {
            labels,
            port,
            path: key_path(path),
        })
    }

    /// Whether the credential filed under this key applies to `target`.
    pub(crate) fn matches(&self, target: &Target) -> bool {
        self.port == target.port
            && self.labels.len() == target.labels.len()
            && path_has_prefix(&target.path, &self.path)
            && self
                .labels
                .iter()
                .zip(&target.labels)
                .all(|(pattern, label)| glob_label(pattern, label))
    }

    /// The host (with port) this key names when it has no wildcard: what the
    /// key means as a registry, `docker.io` for the Hub's legacy keys.
    pub(crate) fn host(&self) -> Option<String> {
        if self.labels.iter().any(|label| label.contains('*')) {
            return None;
        }

        let host = self.labels.join(".");
        Some(match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    /// Orders keys most specific first, the rule behind the kubelet's
    /// reverse-sorted key index: host labels compare from the left, where a
    /// literal label beats a wildcard one and a wildcard with more literal
    /// text beats one with less; then a longer path prefix beats a shorter
    /// one. Wildcard keys that still tie (`a*` and `*a`) go by their text,
    /// reverse sorted, and equal keys keep the order they were added in.
    pub(crate) fn specificity_cmp(&self, other: &Self) -> Ordering {
        let labels = other.label_ranks().cmp(self.label_ranks());
        let path = other.path_depth().cmp(&self.path_depth());
        labels
            .then(path)
            .then_with(|| other.labels.cmp(&self.labels))
    }

    /// Per label: (has no wildcard, literal characters).
    fn label_ranks(&self) -> impl Iterator<Item = (bool, usize)> + '_ {
        self.labels.iter().map(|label| {
            let literal = label.chars().filter(|c| *c != '*').count();
            (!label.contains('*'), literal)
        })
    }

    fn path_depth(&self) -> usize {
        self.path.matches('/').count()
    }
}

impl Target {
    /// The target for an image at `registry` (`host[:port]`, as in a
    /// normalised reference) and `repository`. `None` when the registry is
    /// not a host name, which no key can match.
    pub(crate) fn new(registry: &str, repository: &str) -> Option<Self> {
        let (labels, port) = parse_authority(registry, false).ok()?;

        Some(Self {
            labels,
            port,
            path: format!("/{repository}"),
        })
    }
}

/// Drops `http://` or `https://`; any other scheme is not a registry.
fn strip_scheme(key: &str) -> Result<&str, KeyProblem> {
    let Some((scheme, rest)) = key.split_once("://") else {
        return Ok(key);
    };

    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") {
        Ok(rest)
    } else {
        Err(KeyProblem::Scheme(scheme.to_owned()))
    }
}

/// The key's path as a prefix: `/v1/` or `/v2/` dropped from the front, as
/// the kubelet does, and trailing slashes trimmed.
fn key_path(path: &str) -> String {
    let path = match path.get(..4) {
        Some("/v1/" | "/v2/") => &path[3..],
        _ => path,
    };
    path.trim_end_matches('/').to_owned()
}

/// `prefix` is empty, equal to `path`, or `path` continues after it with `/`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Splits `host[:port]` or `[v6]:port` into lowercase labels and a port.
/// The Hub's legacy host becomes `docker.io`, so that keys and images
/// naming either form meet.
fn parse_authority(authority: &str, globs: bool) -> Result<(Vec<String>, Option<u16>), KeyProblem> {
    if authority.is_empty() {
        return Err(KeyProblem::NoHost);
    }

    let (host, port) = split_port(authority)?;
    let labels = if host.starts_with('[') {
        vec![parse_ipv6(host)?]
    } else {
        parse_labels(host, globs)?
    };

    Ok((hub_alias(labels), port))
}

/// Splits off `:port` after the host; brackets protect an IPv6 address's
/// own colons.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), KeyProblem> {
    let host_end = match authority.find(']') {
        Some(close) if authority.starts_with('[') => close + 1,
        _ => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, rest) = authority.split_at(host_end);

    if rest.is_empty() {
        return Ok((host, None));
    }
    let port = rest
        .strip_prefix(':')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u16>().ok())
        .ok_or_else(|| KeyProblem::Port(rest.to_owned()))?;
    Ok((host, Some(port)))
}

/// `[addr]` in its canonical text form, so that `[0::1]` and `[::1]` meet.
fn parse_ipv6(host: &str) -> Result<String, KeyProblem> {
    let inner = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .ok_or_else(|| KeyProblem::Host(host.to_owned()))?;
    Ok(format!("[{inner}]"))
}

/// DNS labels: letters, digits, `-` and `_`, plus `*` in keys.
fn parse_labels(host: &str, globs: bool) -> Result<Vec<String>, KeyProblem> {
    let valid_char =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (globs && c == '*');

    host.split('.')
        .map(|label| {
            if label.is_empty() || !label.chars().all(valid_char) {
                return Err(KeyProblem::Host(host.to_owned()));
            }
            Ok(label.to_ascii_lowercase())
        })
        .collect()
}

fn hub_alias(labels: Vec<String>) -> Vec<String> {
    if labels.join(".") == HUB_LEGACY_HOST {
        HUB_HOST.split('.').map(str::to_owned).collect()
    } else {
        labels
    }
}

/// Matches one host label against a pattern where `*` stands for any run of
/// characters (the label boundaries already keep it within one label).
fn glob_label(pattern: &str, label: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == label;
    };
    let Some(mut remaining) = label.strip_prefix(first) else {
        return false;
    };

    let mut pieces: Vec<&str> = rest.split('*').collect();
    let last = pieces.pop().unwrap_or_default();
    for piece in pieces {
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> KeyPattern {
        KeyPattern::parse(text).expect("test key parses")
    }

    #[test]
    fn glob_label_star_matches_any_run_within_the_label() {
        assert!(glob_label("*", "anything"));
        assert!(glob_label("pre*", "prefix"));
        assert!(glob_label("*fix", "prefix"));
        assert!(glob_label("p*e*x", "prefix"));
        assert!(glob_label("a*a", "aa"));
        assert!(!glob_label("a*a", "a"));
        assert!(!glob_label("k*", "quay"));
        assert!(!glob_label("abc", "abd"));
    }

    #[test]
    fn url_keys_drop_scheme_and_api_version() {
        assert_eq!(key("https://quay.io/v1/"), key("quay.io"));
        assert_eq!(key("http://quay.io/v2/"), key("quay.io"));
        assert_eq!(key("https://quay.io/v1/team/"), key("quay.io/team"));
        assert_ne!(key("quay.io/v1"), key("quay.io"));
    }

    #[test]
    fn hub_legacy_key_means_docker_io() {
        assert_eq!(key("https://index.docker.io/v1/"), key("docker.io"));
        assert_eq!(key("index.docker.io").host().as_deref(), Some("docker.io"));
    }

    #[test]
    fn host_reports_port_and_refuses_wildcards() {
        assert_eq!(
            key("https://Registry.example.com:5000/x").host().as_deref(),
            Some("registry.example.com:5000")
        );
        assert_eq!(key("*.example.com").host(), None);
    }

    #[test]
    fn ipv6_hosts_compare_canonically() {
        let target = Target::new("[::1]:5000", "a/b").expect("ipv6 target");
        assert!(key("[0:0::1]:5000").matches(&target));
        assert!(!key("[::2]:5000").matches(&target));
        assert!(!key("[::1]").matches(&target));
    }

    #[test]
    fn not_registries_are_refused_with_the_reason() {
        let cases = [
            ("", KeyProblem::NoHost),
            ("https://", KeyProblem::NoHost),
            ("/team", KeyProblem::NoHost),
            ("ftp://quay.io", KeyProblem::Scheme("ftp".into())),
            ("user@quay.io", KeyProblem::UserInfo),
            ("https://u:p/w#x@quay.io", KeyProblem::UserInfo),
            ("quay.io:http", KeyProblem::Port(":http".into())),
            ("quay.io:99999", KeyProblem::Port(":99999".into())),
            ("quay.io:", KeyProblem::Port(":".into())),
            ("quay..io", KeyProblem::Host("quay..io".into())),
            ("qu ay.io", KeyProblem::Host("qu ay.io".into())),
            ("[::g]:5000", KeyProblem::Host("[::g]".into())),
            ("quay.io/x?y", KeyProblem::QueryOrFragment),
        ];

        for (text, problem) in cases {
            assert_eq!(KeyPattern::parse(text), Err(problem), "key {text:?}");
        }
    }

    #[test]
    fn path_prefix_stops_at_segment_boundaries() {
        let target = |repo| Target::new("quay.io", repo).expect("target");
        assert!(key("quay.io/team").matches(&target("team/app")));
        assert!(key("quay.io/team").matches(&target("team")));
        assert!(!key("quay.io/team").matches(&target("teamster/app")));
        assert!(key("quay.io/").matches(&target("teamster/app")));
    }

    #[test]
    fn specificity_puts_literal_hosts_and_deeper_paths_first() {
        let ordered = [
            "a.b.example.com/team/app",
            "a.b.example.com/team",
            "a.b.example.com",
            "a.*.example.com",
            "*b.b.example.com",
            "*.b.example.com/team",
            "*.b.example.com",
        ];

        for pair in ordered.windows(2) {
            let (first, second) = (key(pair[0]), key(pair[1]));
            assert_eq!(first.specificity_cmp(&second), Ordering::Less, "{pair:?}");
            assert_eq!(
                second.specificity_cmp(&first),
                Ordering::Greater,
                "{pair:?}"
            );
        }
    }
}
