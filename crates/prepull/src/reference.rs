//! Image references: checked against the OCI distribution grammar and
//! normalised the way Docker and the kubelet read them.

use std::fmt;

/// A checked, normalised image reference.
///
/// `registry` is the domain (`docker.io`, `localhost:5000`, `[::1]:5000`),
/// `repository` the path below it (`library/nginx`). A reference with neither
/// tag nor digest gets the tag `latest`; a reference with a digest keeps its
/// tag only for display, since the digest is what gets pulled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}
