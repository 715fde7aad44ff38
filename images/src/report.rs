//! The size report: what a node downloads and unpacks for each of our images,
//! beside the figures users compare them with. It prints figures and budget
//! verdicts; it fails nothing.

use std::fmt::Write;

use crate::BuiltImage;

/// Sizes users weigh ours against (measured on these machines; KB and MB are
/// powers of 1000).
const REFERENCES: [(&str, &str); 4] = [
    (
        "Kubernetes pause image",
        "744 KB unpacked, 322 KB compressed",
    ),
    ("crictl binary", "about 26 MB"),
    ("docker CLI binary", "43 MB"),
    (
        "`docker` CLI image (docker pull in an init container)",
        "140 MB or more unpacked",
    ),
];

/// The report as text, one row per image and architecture.
pub fn size_report(images: &[BuiltImage]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<6} {:>22} {:>22} {:>22}  budget (binary)",
        "image", "arch", "binary", "unpacked (layer tar)", "compressed (layer)"
    );

    for image in images {
        for p in &image.platforms {
            let _ = writeln!(
                out,
                "{:<7} {:<6} {:>22} {:>22} {:>22}  {}",
                image.spec.name,
                p.arch.to_string(),
                size(p.binary_size),
                size(p.tar_size),
                size(p.layer_size),
                budget(p.binary_size, image.spec.binary_budget)
            );
        }
    }

    let _ = writeln!(out, "\nfor comparison:");
    for (what, figure) in REFERENCES {
        let _ = writeln!(out, "  {what:<55} {figure}");
    }
    out
}

/// Bytes, then the same in KB or MB (powers of 1000, like the references).
fn size(bytes: u64) -> String {
    let value = bytes as f64;
    if bytes >= 1_000_000 {
        format!("{bytes} ({:.2} MB)", value / 1e6)
    } else {
        format!("{bytes} ({:.1} KB)", value / 1e3)
    }
}

/// The verdict against a budget given in KiB or MiB.
fn budget(bytes: u64, limit: u64) -> String {
    let limit_text = if limit >= 1 << 20 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit >> 10)
    };

    if bytes <= limit {
        format!(
            "<= {limit_text}: ok ({:.0}% used)",
            bytes as f64 * 100.0 / limit as f64
        )
    } else {
        format!("<= {limit_text}: OVER by {} bytes", bytes - limit)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use oci_spec::image::{Descriptor, MediaType};

    use super::*;
    use crate::{Arch, IMAGES, PlatformImage};

    fn image(binary_size: u64) -> BuiltImage {
        let digest = crate::digest::sha256(b"x").expect("digest");
        let desc = Descriptor::new(MediaType::ImageManifest, 1, digest);
        BuiltImage {
            spec: IMAGES[1],
            tag: "0.1.0".to_owned(),
            layout: PathBuf::from("/out/pause"),
            index: desc.clone(),
            platforms: vec![PlatformImage {
                arch: Arch::Arm64,
                manifest: desc,
                binary_size,
                tar_size: 30_208,
                layer_size: 12_345,
            }],
        }
    }

    #[test]
    fn rows_show_all_three_sizes_and_the_verdict() {
        let text = size_report(&[image(29_000)]);
        let row = text.lines().nth(1).expect("a row");

        assert!(row.starts_with("pause   arm64"), "{row}");
        assert!(row.contains("29000 (29.0 KB)"), "{row}");
        assert!(row.contains("30208 (30.2 KB)"), "{row}");
        assert!(row.contains("12345 (12.3 KB)"), "{row}");
        assert!(row.ends_with("<= 32 KiB: ok (89% used)"), "{row}");
        assert!(
            text.contains("744 KB unpacked, 322 KB compressed"),
            "{text}"
        );
    }

    #[test]
    fn a_binary_over_budget_says_by_how_much() {
        let text = size_report(&[image(32 * 1024 + 10)]);

        assert!(text.contains("<= 32 KiB: OVER by 10 bytes"), "{text}");
    }

    #[test]
    fn megabytes_for_large_sizes() {
        assert_eq!(size(3_500_000), "3500000 (3.50 MB)");
        assert_eq!(budget(3_500_000, 4 << 20), "<= 4 MiB: ok (83% used)");
    }
}
