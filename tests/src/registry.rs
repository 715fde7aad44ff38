//! A `docker-registry` on a loopback port, with its access log as evidence of
//! which requests a runtime made.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::Daemon;
use crate::scratch::free_port;

/// How long the registry gets to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A user name and password for basic auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }
    }
}

/// One line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl Request {
    /// True for a manifest GET or HEAD of `repo`.
    pub fn is_manifest_of(&self, repo: &str) -> bool {
        self.path.starts_with(&format!("/v2/{repo}/manifests/"))
    }

    /// True for a blob GET or HEAD of `repo`.
    pub fn is_blob_of(&self, repo: &str) -> bool {
        self.path.starts_with(&format!("/v2/{repo}/blobs/"))
    }
}

/// The test registry. Dropping it stops the daemon.
#[derive(Debug)]
pub struct Registry {
    daemon: Daemon,
    port: u16,
    dir: PathBuf,
    credentials: Vec<Credentials>,
    syncs: AtomicUsize,
}

impl Registry {
    /// Starts a registry storing its data in `dir`; with credentials it
    /// demands basic auth and accepts any of them.
    pub fn start(dir: &Path, credentials: &[Credentials]) -> Result<Registry> {
        let port = free_port()?;
        let config = dir.join("config.yml");
        let htpasswd = dir.join("htpasswd");
        if !credentials.is_empty() {
            write_htpasswd(&htpasswd, credentials)?;
        }
        let yaml = config_yaml(dir, port, (!credentials.is_empty()).then_some(&htpasswd));
        fs::write(&config, yaml).map_err(|e| Error::io("write", &config, e))?;

        let mut command = Command::new("/usr/bin/docker-registry");
        command.arg("serve").arg(&config);
        let daemon = Daemon::spawn("docker-registry", command, &dir.join("registry.log"))?;

        let mut registry = Registry {
            daemon,
            port,
            dir: dir.to_path_buf(),
            credentials: credentials.to_vec(),
            syncs: AtomicUsize::new(0),
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let port = self.port;
        self.daemon
            .wait_until(START_TIMEOUT, || probe(port, "/v2/").is_ok())
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The credentials it accepts (empty when it demands none).
    pub fn credentials(&self) -> &[Credentials] {
        &self.credentials
    }

    /// The directory holding its config, storage and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon, for its log.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The status of an anonymous GET of `path` (`/v2/`: 200 open, 401 auth).
    pub fn anonymous_get(&self, path: &str) -> Result<u16> {
        probe(self.port, path).map_err(|e| Error::io("request", path, e))
    }

    /// Every request logged so far, after making sure requests that
    /// finished before this call are in the log.
    pub fn requests(&self) -> Result<Vec<Request>> {
        self.sync_log()?;
        let log = self.daemon.log_path();
        let text = fs::read_to_string(log).map_err(|e| Error::io("read", log, e))?;
        Ok(text.lines().filter_map(parse_access_line).collect())
    }

    /// Every logged request under `/v2/{repo}/`.
    pub fn repo_requests(&self, repo: &str) -> Result<Vec<Request>> {
        let prefix = format!("/v2/{repo}/");
        let all = self.requests()?;
        Ok(all
            .into_iter()
            .filter(|r| r.path.starts_with(&prefix))
            .collect())
    }

    /// Manifest and blob requests for `repo` (what a pull costs).
    pub fn pull_requests(&self, repo: &str) -> Result<Vec<Request>> {
        let all = self.repo_requests(repo)?;
        Ok(all
            .into_iter()
            .filter(|r| r.is_manifest_of(repo) || r.is_blob_of(repo))
            .collect())
    }

    /// The access log line of a request is written just after its response
    /// is sent, so a client can be done before its line is. A marker request
    /// sent now, waited for in the log, plus a short margin, lets the lines
    /// of every request answered before this call land first.
    fn sync_log(&self) -> Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::Relaxed);
        let marker = format!("/v2/?prepull-e2e-sync={n}");
        probe(self.port, &marker).map_err(|e| Error::io("request", marker.clone(), e))?;

        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let text = fs::read_to_string(self.daemon.log_path()).unwrap_or_default();
            if text.contains(&marker) {
                std::thread::sleep(Duration::from_millis(100));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self
            .daemon
            .down(format!("access log never showed {marker}")))
    }
}

/// Sends one plain HTTP/1.0 GET and returns the status code.
fn probe(port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;

    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {text:?}")))
}

fn config_yaml(dir: &Path, port: u16, htpasswd: Option<&PathBuf>) -> String {
    let auth = htpasswd.map_or(String::new(), |path| {
        format!(
            "auth:\n  htpasswd:\n    realm: prepull-e2e\n    path: {}\n",
            path.display()
        )
    });
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  \
         delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: prepull-e2e-{port}\n\
         {auth}",
        storage = dir.join("storage").display(),
    )
}

/// htpasswd file with bcrypt entries, the only hash docker-registry accepts.
fn write_htpasswd(path: &Path, credentials: &[Credentials]) -> Result<()> {
    let mut text = String::new();
    for c in credentials {
        let hash = bcrypt::hash(&c.password, 5)
            .map_err(|e| Error::parse(format!("bcrypt hash for {}", c.username), e.to_string()))?;
        text.push_str(&format!("{}:{hash}\n", c.username));
    }
    fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

/// Parses a combined-log-format line:
/// `IP - USER [DATE] "METHOD PATH PROTO" STATUS SIZE "REFERER" "AGENT"`.
fn parse_access_line(line: &str) -> Option<Request> {
    let (_, rest) = line.split_once(" \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut parts = request.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    parts.next().filter(|proto| proto.starts_with("HTTP/"))?;
    let status = rest.split(' ').next()?.parse().ok()?;

    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_line() {
        let line = r#"127.0.0.1 - - [03/Dec/2026:17:10:00 +0000] "HEAD /v2/a/b/manifests/v1 HTTP/1.1" 200 528 "" "containerd/1.6.20""#;
        let req = parse_access_line(line).expect("parsed");
        assert_eq!(req.method, "HEAD");
        assert_eq!(req.path, "/v2/a/b/manifests/v1");
        assert_eq!(req.status, 200);
        assert!(req.is_manifest_of("a/b"));
        assert!(!req.is_manifest_of("a"));
    }

    #[test]
    fn ignores_application_log_lines() {
        let line = r#"time="2026-12-03T17:10:00Z" level=info msg="listening on 127.0.0.1:5000" go.version=go1.19"#;
        assert_eq!(parse_access_line(line), None);
    }

    #[test]
    fn auth_section_only_with_htpasswd() {
        let dir = Path::new("/tmp/x");
        assert!(!config_yaml(dir, 5000, None).contains("htpasswd"));
        let yaml = config_yaml(dir, 5000, Some(&dir.join("h")));
        assert!(yaml.contains("path: /tmp/x/h"), "{yaml}");
        assert!(yaml.contains("addr: 127.0.0.1:5000"), "{yaml}");
    }
}
