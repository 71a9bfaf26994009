//! The OpenAPI document: served, well-formed, and in step with the router.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use reqwest::StatusCode;
use serde_json::Value;
use tower::ServiceExt;

use crate::support::*;

/// Routes left out of the OpenAPI document on purpose, with the reason.
const UNDOCUMENTED: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/popup/start/{id}",
        "HTML page opened from approval_url",
    ),
    ("GET", "/popup/callback", "HTML page, the OIDC redirect_uri"),
    (
        "GET",
        "/popup/signed-out",
        "HTML page, the post_logout_redirect_uri",
    ),
    (
        "POST",
        "/popup/decision",
        "target of the decision page's HTML form",
    ),
    ("GET", "/popup/popup.css", "stylesheet of the popup pages"),
    (
        "GET",
        "/r/{code}",
        "short link opened from remote_url on the approver's device",
    ),
    (
        "GET",
        "/r/{code}/qr.svg",
        "QR image at remote_url, shown by the requester's page",
    ),
    ("GET", "/healthz", "liveness probe for operators"),
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn fetch_document(server: &TestServer) -> Value {
    let response = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// Returns the route paths of the router, read from its `Debug` output.
///
/// NOTE: axum 0.8 has no public way to list routes; its `Debug` output
/// prints them as `RouteId(n): "/path"` before `fallback_router:`. The
/// checks below fail loudly if that format changes, rather than passing
/// with no routes.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // The fallback router that follows holds only axum's catch-all paths.
    let (routes, _) = debug
        .split_once("fallback_router:")
        .expect("axum's Debug output of Router changed");
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(start) = rest.find("RouteId(") {
        rest = &rest[start..];
        let Some(quote) = rest.find(": \"") else {
            break;
        };
        let after = &rest[quote + 3..];
        let end = after.find('"').unwrap();
        paths.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    paths
}

/// Returns the methods that `path` serves: every method whose response is
/// not the router's 405.
async fn served_methods(router: &axum::Router, path: &str) -> Vec<Method> {
    let concrete = path.replace("{id}", "AAAAAAAAAAAAAAAAAAAAAA");
    let mut served = Vec::new();
    for method in METHODS {
        let request = Request::builder()
            .method(method.clone())
            .uri(&concrete)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        if response.status() != StatusCode::METHOD_NOT_ALLOWED {
            served.push(method.clone());
        }
    }
    served
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn document_is_openapi_3_1() {
    let server = start().await;

    let document = fetch_document(&server).await;

    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "Countersign host API");
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    for name in [
        "CreateRequest",
        "CreatedResponse",
        "StatusResponse",
        "ConsumeRequest",
        "ConsumeResponse",
        "Problem",
    ] {
        assert!(
            document["components"]["schemas"][name].is_object(),
            "schema {name} missing"
        );
    }
}

#[tokio::test]
async fn every_route_is_documented_or_excluded() {
    let server = start().await;
    let document = fetch_document(&server).await;
    let documented = documented_operations(&document);
    let router = countersign::http::router(server.state.clone());

    let paths = router_paths(&router);
    assert!(paths.contains("/healthz"), "route listing broke: {paths:?}");
    assert!(
        paths.contains("/api/v1/approvals"),
        "route listing broke: {paths:?}"
    );

    let mut served = BTreeSet::new();
    for path in &paths {
        for method in served_methods(&router, path).await {
            served.insert((method.as_str().to_owned(), path.clone()));
        }
    }

    for (method, path) in &served {
        let excluded = UNDOCUMENTED
            .iter()
            .any(|(m, p, _)| m == method && p == path);
        assert!(
            documented.contains(&(method.clone(), path.clone())) || excluded,
            "{method} {path} is served but neither documented nor listed in UNDOCUMENTED"
        );
    }
    for operation in &documented {
        assert!(
            served.contains(operation),
            "{operation:?} is documented but not served"
        );
    }
    for (method, path, reason) in UNDOCUMENTED {
        assert!(
            served.contains(&((*method).to_owned(), (*path).to_owned())),
            "{method} {path} is listed as undocumented ({reason}) but not served"
        );
    }
}

#[tokio::test]
async fn host_api_routes_are_documented() {
    let server = start().await;

    let documented = documented_operations(&fetch_document(&server).await);

    for (method, path) in [
        ("POST", "/api/v1/approvals"),
        ("GET", "/api/v1/approvals/{id}"),
        ("POST", "/api/v1/approvals/{id}/consume"),
        ("GET", "/api/v1/approvals/{id}/events"),
        ("GET", "/api/v1/openapi.json"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} missing"
        );
    }
}

#[tokio::test]
async fn error_responses_are_problem_json() {
    let server = start().await;
    let document = fetch_document(&server).await;

    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    continue;
                }
                let content = response["content"].as_object().unwrap();
                let keys: Vec<&String> = content.keys().collect();
                assert_eq!(
                    keys,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} error responses documented");
}

#[tokio::test]
async fn api_key_routes_declare_security() {
    let server = start().await;
    let document = fetch_document(&server).await;

    for (method, path) in [
        ("post", "/api/v1/approvals"),
        ("get", "/api/v1/approvals/{id}"),
        ("post", "/api/v1/approvals/{id}/consume"),
    ] {
        let operation = &document["paths"][path][method];
        assert_eq!(
            operation["security"][0]["api_key"],
            serde_json::json!([]),
            "{method} {path}"
        );
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
    }
    let events = &document["paths"]["/api/v1/approvals/{id}/events"]["get"];
    assert_eq!(events["security"], serde_json::json!([{}]));
}
