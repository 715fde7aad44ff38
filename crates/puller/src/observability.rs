//! Logging: `tracing` events to stderr as text or JSON lines, filtered by
//! `--log-level` or, when that is unset, `RUST_LOG`.
//!
//! The filter is `tracing_subscriber`'s `Targets` (`info`,
//! `warn,prepull=debug`) rather than `EnvFilter`, which would pull a regex
//! engine into a binary meant to stay small. Span-field filters such as
//! `[image{...}]=debug` are therefore not supported.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The level used when neither `--log-level` nor `RUST_LOG` says.
const DEFAULT_FILTER: &str = "info";

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A checked log filter: comma-separated directives, each a level or
/// `target=level`.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    targets: Targets,
}

/// A filter directive that is neither a level nor `target=level`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log filter {text:?}: {directive:?} is not a level ({}) or target=level", LEVELS.join("|"))]
pub struct FilterError {
    pub text: String,
    pub directive: String,
}

impl Filter {
    /// Checks `text` strictly: `Targets` alone would read a misspelt level
    /// such as `verbose` as the name of a target and silently log nothing.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let invalid = |directive: &str| FilterError {
            text: text.to_owned(),
            directive: directive.to_owned(),
        };

        for directive in text.split(',').map(str::trim) {
            let level = directive
                .rsplit_once('=')
                .map_or(directive, |(_, level)| level);
            if !is_level(level) {
                return Err(invalid(directive));
            }
        }
        let targets = Targets::from_str(text).map_err(|_| invalid(text))?;
        Ok(Filter {
            text: text.to_owned(),
            targets,
        })
    }

    /// `--log-level` when given, else `RUST_LOG` when set and not empty,
    /// else `info`.
    pub fn choose(flag: Option<Filter>) -> Result<Filter, FilterError> {
        if let Some(filter) = flag {
            return Ok(filter);
        }

        match std::env::var("RUST_LOG") {
            Ok(text) if !text.trim().is_empty() => Filter::parse(text.trim()),
            _ => Filter::parse(DEFAULT_FILTER),
        }
    }
}

fn is_level(text: &str) -> bool {
    LEVELS.iter().any(|level| level.eq_ignore_ascii_case(text))
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Installs the global subscriber. Called once, before anything logs.
pub fn init(format: LogFormat, filter: Filter) {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };

    tracing_subscriber::registry()
        .with(layer.with_filter(filter.targets))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_directives_are_accepted() {
        for text in [
            "info",
            "DEBUG",
            "warn,prepull=debug",
            "prepull::pull=trace,off",
        ] {
            assert!(Filter::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn unknown_level_is_refused_naming_the_directive() {
        let err = Filter::parse("info,prepull=loud").expect_err("bad level");
        assert_eq!(err.directive, "prepull=loud");
        assert!(
            err.to_string()
                .starts_with("invalid log filter \"info,prepull=loud\"")
        );
        assert!(Filter::parse("verbose").is_err());
        assert!(Filter::parse("").is_err());
    }

    #[test]
    fn explicit_flag_wins_over_rust_log() {
        let flag = Filter::parse("trace").expect("valid");
        assert_eq!(
            Filter::choose(Some(flag)).expect("valid").to_string(),
            "trace"
        );
    }
}
