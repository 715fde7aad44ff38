//! JSON encoding with a fixed byte form.
//!
//! `oci-spec` keeps labels and annotations in `HashMap`s, whose iteration order
//! changes from one run to the next; encoding them directly would give a
//! different config or index digest on every build. Every object's keys are
//! therefore sorted before the document is written, compactly.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ImagesError;

/// `value` as compact JSON with the keys of every object in sorted order.
pub(crate) fn canonical<T: Serialize>(
    value: &T,
    what: &'static str,
) -> Result<Vec<u8>, ImagesError> {
    let json = |source| ImagesError::Json { what, source };
    let tree = serde_json::to_value(value).map_err(json)?;

    serde_json::to_vec(&sorted(tree)).map_err(json)
}

/// Rebuilds every object with its keys inserted in order. Inserting in order
/// keeps the order whichever map type `serde_json` was built with.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));

            let mut out = Map::new();
            for (key, inner) in entries {
                out.insert(key, sorted(inner));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let inner: HashMap<String, u32> = (0..20).map(|i| (format!("k{i:02}"), i)).collect();
        let mut outer = HashMap::new();
        outer.insert("zeta", vec![inner.clone()]);
        outer.insert("alpha", vec![inner]);

        let text = String::from_utf8(canonical(&outer, "test").expect("encode")).expect("utf-8");

        assert!(
            text.starts_with(r#"{"alpha":[{"k00":0,"k01":1,"k02":2,"#),
            "{text}"
        );
        assert!(text.find("\"alpha\"") < text.find("\"zeta\""), "{text}");
        assert!(!text.contains(' '), "not compact: {text}");
    }
}
