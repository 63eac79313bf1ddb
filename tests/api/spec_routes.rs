//! The spec and the router describe the same API: every route is documented and every
//! documented operation exists; every schema in the spec compiles.

use std::collections::BTreeSet;

use crate::common::spec::{METHODS, spec};

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
                let schema = &resp["content"]["application/json"]["schema"];
                if status != "204" {
                    assert!(!schema.is_null(), "{m} {path} {status}: no JSON schema");
                }
                let mut root = serde_json::json!({"components": spec()["components"].clone()});
                if let Some(obj) = schema.as_object() {
                    for (k, v) in obj {
                        root[k] = v.clone();
                    }
                }
                jsonschema::validator_for(&root).unwrap_or_else(|e| {
                    panic!("{m} {path} {status}: schema does not compile: {e}")
                });
            }
        }
    }
}
