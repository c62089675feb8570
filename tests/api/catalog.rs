//! The catalog is the one list of operations: REST serves exactly it, `/openapi.json` describes
//! exactly it, and the security matrix builds a call for each of its entries.

use std::collections::BTreeSet;

use memberpass::service::ops::catalog;
use reqwest::Method;

use crate::helpers::spawn_app;
use crate::matrix::case;

#[tokio::test]
async fn the_catalog_rest_routes_openapi_and_matrix_are_one_set_of_operations() {
    let app = spawn_app().await;
    let w = app.world().await;
    let in_catalog: BTreeSet<(String, String, String)> = catalog::all()
        .map(|op| {
            let s = op.spec();
            (s.method.as_str().to_owned(), s.path.to_owned(), s.name.to_owned())
        })
        .collect();
    assert_eq!(in_catalog.len(), 36);

    let openapi = app.call(Method::GET, "/openapi.json", None, None).await.body;
    let mut described = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = op["operationId"].as_str().unwrap().to_owned();
            described.insert((method.to_ascii_uppercase(), path.clone(), name));
        }
    }
    // Besides the catalog: the two unauthenticated leak-report routes, and nothing else.
    let mut expected = in_catalog.clone();
    expected.insert(("POST".into(), "/v1/tokens/revoke".into(), "revoke_by_possession".into()));
    expected.insert((
        "POST".into(),
        "/v1/secret-scanning/github".into(),
        "github_secret_scanning_alert".into(),
    ));
    assert_eq!(described, expected, "/openapi.json and the catalog differ");
    for unauthenticated in ["/v1/tokens/revoke", "/v1/secret-scanning/github"] {
        assert_eq!(
            openapi["paths"][unauthenticated]["post"]["security"],
            serde_json::json!([])
        );
    }
    // A creation links to the operations that take the id it returns.
    let links = &openapi["paths"]["/v1/projects"]["post"]["responses"]["201"]["links"];
    for name in [
        "get_project",
        "update_project",
        "archive_project",
        "list_plans",
        "create_plan",
    ] {
        assert_eq!(links[name]["operationId"], name, "{links:#}");
        assert_eq!(links[name]["parameters"]["project_id"], "$response.body#/data/id");
    }
    let job_links = &openapi["paths"]["/v1/plans/{plan_id}/access-codes"]["post"]["responses"]["202"]["links"];
    assert_eq!(
        job_links["get_job_status"]["parameters"]["job_id"],
        "$response.body#/data/id"
    );

    let job = uuid::Uuid::now_v7().to_string();
    for op in catalog::all() {
        let c = case(op, &w, &job);
        assert!(
            !c.path.contains('{'),
            "the matrix cannot build a call for {}",
            c.op.name
        );
        assert_eq!(c.method.as_str(), c.op.method.as_str());
        // Served, and behind authentication: no token is 401, not 404 or 405.
        let reply = app.call(c.method.clone(), &c.path, None, c.body.clone()).await;
        reply.assert_error(401, "AUTHENTICATION_REQUIRED");
        assert_eq!(reply.headers["www-authenticate"], "Bearer", "{}", c.op.name);
    }
    // Nothing else under /v1 answers as an operation.
    for (method, path) in [
        (Method::GET, "/v1/subscriptions".to_owned()),
        (Method::PUT, "/v1/projects".to_owned()),
        (Method::DELETE, format!("/v1/projects/{}", w.p1)),
        (Method::GET, "/v1/tokens/current".to_owned()),
    ] {
        let reply = app.call(method, &path, None, None).await;
        assert!(matches!(reply.status.as_u16(), 404 | 405), "{path}: {}", reply.status);
    }
}
