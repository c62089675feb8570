//! Settings → Team tokens in a real browser (issue 21, item 1): an admin reads every token of
//! the team at 1280 and 390 px (screenshots `team-tokens-*.png`, no sideways scroll), filters the
//! list with the form, and revokes another person's token through its confirmation page.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use serde_json::Value;

use crate::browser::Browser;
use crate::dashboard::person;
use crate::helpers::{OWNER_A, OWNER_B, VIEWER_A, spawn_app, token_id};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The ids of the table's rows and their state cells.
async fn listed(b: &Browser) -> Vec<(String, String)> {
    let rows: Value = b
        .js("return Array.from(document.querySelectorAll('#team-tokens tbody tr')).map(r => [r.dataset.tokenId, r.querySelector('.state').textContent.trim()])")
        .await;
    serde_json::from_value(rows).unwrap()
}

#[tokio::test]
async fn an_admin_reads_filters_and_revokes_the_teams_tokens_in_a_real_browser() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "admin@memberpass.test", Role::Admin).await;
    let reader = app
        .mint(VIEWER_A, &w.team_a, &[Ability::ProjectView, Ability::McpFull], &[])
        .await;
    let writer = app
        .mint(
            "admin@memberpass.test",
            &w.team_a,
            &[Ability::ProjectView, Ability::ProjectUpdate],
            &[&w.p1],
        )
        .await;
    let agent = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    crate::oauth_binding::make_oauth(&app, &agent, OWNER_A, &w.team_a).await;
    let elsewhere = app.mint(OWNER_B, &w.team_b, &[Ability::ProjectView], &[]).await;
    assert_eq!(app.get("/v1/me", &reader).await.status, 200);
    sqlx::query("UPDATE tokens SET expires_at = $1 WHERE id = $2")
        .bind(memberpass::store::now_ms() + 3 * DAY_MS)
        .bind(token_id(&writer))
        .execute(app.pool())
        .await
        .unwrap();
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    b.sign_in("admin@memberpass.test").await;
    b.follow("a[href='/settings/team-tokens']").await;
    b.wait_for_path("/settings/team-tokens").await;
    assert_eq!(b.h1().await, "Settings → Team tokens");
    let rows = listed(&b).await;
    for t in [&reader, &writer, &agent] {
        assert!(rows.iter().any(|(id, _)| *id == token_id(t)), "{rows:?}");
    }
    assert!(!rows.iter().any(|(id, _)| *id == token_id(&elsewhere)));
    b.screenshot("team-tokens").await;

    // Filter: the tokens that can write.
    b.js("document.getElementById('f-can_write').value = 'true'").await;
    b.follow("#team-token-filters button[type=submit]").await;
    b.wait_for_path("/settings/team-tokens?").await;
    let rows = listed(&b).await;
    assert_eq!(rows, [(token_id(&writer), "active".to_owned())]);

    // Revoke the viewer's token from the list, through its confirmation page.
    b.goto("/settings/team-tokens").await;
    let id = token_id(&reader);
    b.follow(&format!("#revoke-{id}")).await;
    b.wait_for_path(&format!("/settings/team-tokens/{id}/revoke")).await;
    assert!(b.text().await.contains(VIEWER_A));
    b.follow("#revoke").await;
    b.wait_for_path("/settings/team-tokens").await;
    let rows = listed(&b).await;
    assert!(rows.contains(&(id.clone(), "revoked".to_owned())), "{rows:?}");
    assert_eq!(app.get("/v1/me", &reader).await.status, 401);
}
