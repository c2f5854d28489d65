//! Server-managed `meta` elements.

use serde_json::{Map, Value};

use crate::instant::{Micros, format_instant};

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta`.
/// `id` is placed right after `resourceType`, as FHIR JSON is usually written.
pub fn stamp(resource: &mut Value, id: &str, version: i64, last_updated: Micros) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let mut meta = match obj.shift_remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert(
        "lastUpdated".into(),
        Value::String(format_instant(last_updated)),
    );
    obj.shift_remove("id");
    let rest = std::mem::take(obj);
    let mut rest = rest.into_iter();
    if let Some((k, v)) = rest.next() {
        if k == "resourceType" {
            obj.insert(k, v);
            obj.insert("id".into(), Value::String(id.to_owned()));
        } else {
            obj.insert("id".into(), Value::String(id.to_owned()));
            obj.insert(k, v);
        }
    } else {
        obj.insert("id".into(), Value::String(id.to_owned()));
    }
    obj.insert("meta".into(), Value::Object(meta));
    obj.extend(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_server_managed_elements() {
        let mut r = json!({"resourceType": "Patient", "id": "old", "meta": {"versionId": "9", "tag": [{"code": "t"}]}, "active": true});
        stamp(&mut r, "p1", 3, 0);
        assert_eq!(
            r,
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3", "lastUpdated": "1970-01-01T00:00:00.000000Z", "tag": [{"code": "t"}]}, "active": true})
        );
        let keys: Vec<_> = r.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "active"]);
    }
}
