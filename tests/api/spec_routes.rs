//! The spec and the router describe the same API: every route is documented and every
//! documented operation exists; every schema in the spec compiles.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::spec::{METHODS, resolve_ref, spec};

#[test]
fn every_route_is_in_the_spec_and_every_documented_route_exists() {
    let routes: BTreeSet<(String, String)> = xuncha::app::route_table()
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in spec()["paths"].as_object().expect("paths").iter() {
        for m in METHODS {
            if item.get(*m).is_some() {
                documented.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes missing from api-spec/openapi.yaml: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "api-spec/openapi.yaml documents routes that do not exist: {stale:?}"
    );
}

/// Compiles `schema` with the spec's components beside it (so that `#/components/...`
/// references resolve), panicking with `what` when it does not compile.
fn compile(schema: &Value, what: &str) {
    let mut root = serde_json::json!({"components": spec()["components"].clone()});
    if let Some(obj) = schema.as_object() {
        for (k, v) in obj {
            root[k] = v.clone();
        }
    }
    jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{what}: schema does not compile: {e}"));
}

#[test]
fn every_operation_documents_its_responses_with_schemas_that_compile() {
    for (path, item) in spec()["paths"].as_object().expect("paths").iter() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{m} {path}: no responses"));
            assert!(!responses.is_empty(), "{m} {path}: no responses");
            assert!(op["operationId"].is_string(), "{m} {path}: no operationId");
            for (status, resp) in responses {
                let resp = resolve_ref(resp);
                assert!(
                    resp["description"].is_string(),
                    "{m} {path} {status}: no description"
                );
                let schema = &resp["content"]["application/json"]["schema"];
                // 204 No Content, 304 Not Modified and every answer to HEAD have no body.
                if status == "204" || status == "304" || *m == "head" {
                    assert!(
                        resp.get("content").is_none(),
                        "{m} {path} {status}: documents a body, which this answer never has"
                    );
                } else if !status.starts_with('2') {
                    // Errors always carry the JSON envelope.
                    assert!(!schema.is_null(), "{m} {path} {status}: no JSON schema");
                } else if let Some(content) = resp.get("content").and_then(Value::as_object) {
                    // A success may have no body (tus creation's 201) or a non-JSON one (a
                    // photo); what it documents has a schema.
                    for (media, c) in content {
                        assert!(
                            c["schema"].is_object(),
                            "{m} {path} {status}: {media} has no schema"
                        );
                    }
                }
                compile(schema, &format!("{m} {path} {status}"));
            }
            // Request bodies (JSON or not) and parameters: their schemas compile too.
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, c) in content {
                    assert!(
                        c["schema"].is_object(),
                        "{m} {path}: request body {media} has no schema"
                    );
                    compile(&c["schema"], &format!("{m} {path} request body {media}"));
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = resolve_ref(p);
                let name = p["name"].as_str().unwrap_or("?");
                compile(&p["schema"], &format!("{m} {path} parameter {name}"));
            }
        }
    }
}
