//! An agent's held call decided in a real browser (headless Chromium, as `browser.rs`): the owner
//! signs in, follows the notice to the Approvals list, opens the page the `APPROVAL_REQUIRED`
//! answer linked to, reads what the call would do, clicks Approve, and the repeated MCP call
//! runs; and releases a hold and sets a budget in the policy form. Screenshots of the list, the
//! page and the policy form at 1280 and 390 px.

use memberpass::domain::ability::Ability;
use memberpass::domain::approval::SurfaceRule;
use memberpass::service::Caller;

use crate::browser::Browser;
use crate::dashboard_approvals::{held_kick, member_names, passwords};
use crate::helpers::{OWNER_A, spawn_app, token_id};
use crate::mcp::call_tool;

#[tokio::test]
async fn the_owner_approves_an_agents_held_call_in_a_real_browser_and_it_runs() {
    let app = spawn_app().await;
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;
    let path = format!("/settings/approvals/{}", held.id);
    assert!(held.url.ends_with(&path), "{}", held.url);

    b.sign_in(OWNER_A).await;
    assert!(b.text().await.contains("1 call(s) wait for your approval"));
    b.follow("#approvals-notice a").await;
    b.wait_for_path("/settings/approvals?status=pending").await;
    let row = format!("tr[data-approval-id='{}']", held.id);
    assert_eq!(b.text_of(&format!("{row} .approval-status")).await, "pending");
    b.screenshot("approvals-list").await;

    b.follow(&format!("{row} a")).await;
    b.wait_for_path(&path).await;
    let (name, handle) = member_names(&app, &w.member).await;
    let effect = b.text_of(".effect").await;
    assert!(
        effect.contains(&name) && effect.contains(&format!("@{handle}")),
        "{effect}"
    );
    assert_eq!(b.text_of("#approval-status").await, "pending");
    b.screenshot("approval-page").await;

    b.follow("#approve").await;
    b.wait_for_path(&path).await;
    assert_eq!(b.text_of("#approval-status").await, "granted");
    assert!(b.text().await.contains(OWNER_A), "who decided");
    assert!(
        !b.text().await.contains("wait for your approval"),
        "nothing waits any more"
    );

    let ran = call_tool(&app, &held.token, "kick_member", held.args.clone()).await;
    assert_eq!(ran["isError"], false, "{ran:#}");
    b.goto(&path).await;
    assert_eq!(b.text_of("#approval-status").await, "used");
}

#[tokio::test]
async fn the_owner_releases_a_hold_and_sets_a_budget_in_the_policy_form_of_a_real_browser() {
    let app = spawn_app().await;
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    let w = app.world().await;
    passwords(&app).await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    app.service
        .set_token_budget(&Caller::system(), &token_id(&token), "archive_project", 3)
        .await
        .unwrap();

    b.sign_in(OWNER_A).await;
    b.goto("/settings/approvals").await;
    b.follow("#policy-link").await;
    b.wait_for_path("/settings/approvals/policy").await;
    assert_eq!(b.text_of("#policy-version").await, "0");
    assert_eq!(
        b.js("return document.getElementById('rule-kick_member').value").await,
        "mcp"
    );
    b.screenshot("approval-policy").await;

    b.js("document.getElementById('rule-kick_member').value = 'none'").await;
    b.follow("#save-policy").await;
    b.wait_for_path("/settings/approvals/policy?saved=policy").await;
    assert_eq!(b.text_of("#policy-version").await, "1");
    assert_eq!(
        b.js("return document.getElementById('rule-kick_member').value").await,
        "none"
    );
    let policy = app.service.approval_policy(&w.team_a).await.unwrap();
    assert_eq!(policy.rule("kick_member"), SurfaceRule::None);

    b.js(&format!(
        "document.getElementById('budget-token').value = '{}'",
        token_id(&token)
    ))
    .await;
    b.js("document.getElementById('budget-operation').value = 'create_project'")
        .await;
    b.fill("budget-limit", "1").await;
    b.follow("#save-budget").await;
    b.wait_for_path("/settings/approvals/policy?saved=budget").await;
    let budgets = app.service.token_budgets(&token_id(&token)).await.unwrap();
    assert_eq!(
        budgets,
        vec![("archive_project".to_owned(), 3), ("create_project".to_owned(), 1)]
    );
}
