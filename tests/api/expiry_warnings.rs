//! Warnings before a token breaks (issue 21, item 4): with `serve --maintenance-interval` short, a
//! token 3 days from its expiry gets the 7-day warning, one 12 hours from it the 1-day warning,
//! an expired one its `token.expired` note — each once, as an audit entry and a notification on
//! its owner's dashboard — and one 30 days away nothing.

use std::time::Duration;

use memberpass::domain::role::Role;
use serde_json::Value;

use crate::dashboard::{cookie, page, person};
use crate::helpers::{TestApp, spawn_with, token_id};

const OWNER: &str = "expiring@memberpass.test";

async fn mint(app: &TestApp, team: &str, name: &str, expires_in: &str) -> String {
    let out = app
        .cli(&[
            "--json",
            "token",
            "mint",
            "--team",
            team,
            "--user",
            OWNER,
            "--name",
            name,
            "--ability",
            "project:view-any",
            "--expires-in",
            expires_in,
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    token_id(&token)
}

/// (event, subject, properties) of the warnings given so far.
pub(crate) async fn warnings(app: &TestApp) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event, subject_id, properties FROM audit_log WHERE event IN ('token.expiring', 'token.expired') ORDER BY seq",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(e, s, p)| (e, s, serde_json::from_str(&p).unwrap()))
        .collect()
}

#[tokio::test]
async fn each_warning_is_given_once_as_an_entry_and_a_notification() {
    let app = spawn_with(|c| c.maintenance_interval = Duration::from_millis(200)).await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    let week = mint(&app, &w.team_a, "three days", "3d").await;
    let day = mint(&app, &w.team_a, "half a day", "12h").await;
    let far = mint(&app, &w.team_a, "a month", "30d").await;
    let gone = mint(&app, &w.team_a, "gone", "1h").await;
    sqlx::query("UPDATE tokens SET expires_at = $1 WHERE id = $2")
        .bind(memberpass::domain::time::now_ms() - 1000)
        .bind(&gone)
        .execute(app.pool())
        .await
        .unwrap();
    // A pass that ran between `gone`'s mint and the test moving its expiry gave it the 1-day
    // warning, rightly: that one is left out of the count.
    let counted = |all: Vec<(String, String, Value)>| -> Vec<(String, String, Value)> {
        all.into_iter()
            .filter(|(e, s, _)| !(s == &gone && e == "token.expiring"))
            .collect()
    };
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = counted(warnings(&app).await);
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more runs: nothing is given twice.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = counted(warnings(&app).await);
    assert_eq!(again.len(), 3, "{again:#?}");
    let of = |id: &str| seen.iter().find(|(_, s, _)| s == id).cloned();
    let (event, _, props) = of(&week).expect("the 7-day warning");
    assert_eq!(
        (event.as_str(), props["days_left"].as_i64()),
        ("token.expiring", Some(3))
    );
    let (event, _, props) = of(&day).expect("the 1-day warning");
    assert_eq!(
        (event.as_str(), props["days_left"].as_i64()),
        ("token.expiring", Some(1))
    );
    let (event, _, _) = of(&gone).expect("the expiry note");
    assert_eq!(event, "token.expired");
    assert!(of(&far).is_none());
    let kinds: Vec<(String, String)> =
        sqlx::query_as("SELECT token_id, kind FROM token_warnings ORDER BY token_id, kind")
            .fetch_all(app.pool())
            .await
            .unwrap();
    let kinds: Vec<_> = kinds
        .into_iter()
        .filter(|(t, k)| !(t == &gone && k == "expiring_1d"))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");

    // The owner sees them on the dashboard.
    let session = cookie(&app, OWNER).await;
    let html = page(&app, "/settings/tokens", &session).await.text().await.unwrap();
    assert!(html.contains("“three days” expires at"), "{html}");
    assert!(html.contains("in 1 day(s)"), "{html}");
    assert!(html.contains("“gone” expired at"), "{html}");
}
