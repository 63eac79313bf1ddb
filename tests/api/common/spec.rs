//! api-spec/openapi.yaml, loaded once: every response a test receives on a documented route
//! must have a documented status and, when JSON, match that status's schema.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("read api-spec/openapi.yaml");
        serde_norway::from_str(&text).expect("api-spec/openapi.yaml is not valid YAML")
    })
}

/// An object of the spec (a response, a parameter, …) with its `$ref` (e.g.
/// `#/components/responses/Unauthorized`) followed, however many times it is chained.
/// Panics on a reference that points nowhere, so a typo in the spec fails the tests.
pub fn resolve_ref(v: &Value) -> &Value {
    let mut v = v;
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are supported: {r}"));
        v = spec()
            .pointer(pointer)
            .unwrap_or_else(|| panic!("reference {r} points nowhere in api-spec/openapi.yaml"));
    }
    panic!("references nest too deeply (a cycle?)")
}

/// The spec's path template matching a concrete path (query string ignored).
pub fn template_for(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    let paths = spec()["paths"].as_object()?;
    // Prefer templates with more literal segments (e.g. /users/me over /users/{id}).
    let mut best: Option<(usize, &String)> = None;
    for template in paths.keys() {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let matches = t.iter().zip(&segs).all(|(a, b)| {
            if a.starts_with('{') && a.ends_with('}') {
                !b.is_empty()
            } else if a == b {
                literal += 1;
                true
            } else {
                false
            }
        });
        if matches && best.is_none_or(|(n, _)| literal > n) {
            best = Some((literal, template));
        }
    }
    best.map(|(_, t)| t.clone())
}

fn validator(
    template: &str,
    method: &str,
    status: &str,
    schema: &Value,
) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let key = format!("{method} {template} {status}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().expect("cache").get(&key) {
        return v.clone();
    }
    // Refs in the spec point into the document (#/components/...): give the schema the
    // document's components so that they resolve.
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec()["components"].clone(),
    });
    if let Some(obj) = schema.as_object() {
        for (k, v) in obj {
            root[k] = v.clone();
        }
    }
    let v = Arc::new(
        jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("schema for {key} does not compile: {e}")),
    );
    cache.lock().expect("cache").insert(key, v.clone());
    v
}

/// Panics if a response on a documented operation is not what the spec says.
pub fn check_response(
    method: &str,
    path: &str,
    status: u16,
    headers: &HeaderMap,
    text: &str,
    body: &Value,
) {
    let Some(template) = template_for(path) else {
        return; // undocumented paths are tested for the error envelope directly
    };
    let m = method.to_ascii_lowercase();
    let Some(op) = spec()["paths"][&template].get(&m) else {
        // Wrong method on a documented path: must still be the error envelope.
        assert!(
            body["error"]["code"].is_string(),
            "{method} {path} → {status}: {text}"
        );
        return;
    };
    let responses = &op["responses"];
    let key = status.to_string();
    let Some(resp) = responses.get(&key).or_else(|| responses.get("default")) else {
        panic!(
            "{method} {template} answered {status}, which the spec does not document; body: {text}"
        );
    };
    let resp = resolve_ref(resp);
    let schema = &resp["content"]["application/json"]["schema"];
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Answers to HEAD never have a body (their headers may still name the JSON envelope).
    if m == "head" || resp.get("content").is_none() {
        assert!(
            text.is_empty(),
            "{method} {template} {status}: the spec documents no body, got {text}"
        );
        return;
    }
    if schema.is_null() {
        // A body that is not JSON (a photo): its media type must be one the spec lists.
        let mime = ct.split(';').next().unwrap_or("").trim();
        assert!(
            resp["content"].get(mime).is_some(),
            "{method} {template} {status}: content-type {ct:?} is not documented"
        );
        return;
    }
    assert!(
        ct.starts_with("application/json"),
        "{method} {template} {status}: content-type {ct:?}, body {text}"
    );
    let v = validator(&template, &m, &key, schema);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: response does not match the spec:\n  {}\nbody: {text}",
        errors.join("\n  ")
    );
}
