//! An agent's held call decided in a real browser (headless Chromium, as `browser.rs`): the owner
//! signs in, follows the notice to the Approvals list, opens the page the `APPROVAL_REQUIRED`
//! answer linked to, reads what the call would do, clicks Approve, and the repeated MCP call
//! runs. Screenshots of the list and the page at 1280 and 390 px.

use crate::browser::Browser;
use crate::dashboard_approvals::{held_kick, member_names, passwords};
use crate::helpers::{OWNER_A, spawn_app};
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
