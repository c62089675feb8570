//! The team's token policy in a real browser (issue 21, item 3): an owner limits managers to
//! read-only abilities and new tokens to 90 days on Settings → Team token policy; a manager's mint
//! form then offers only reads and no "Never", and the manager's existing write token is told it
//! breaks the policy. Screenshots of the policy form and the manager's tokens page.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use serde_json::json;

use crate::browser::Browser;
use crate::dashboard::person;
use crate::helpers::{spawn_app, token_id};

const OWNER: &str = "policy-browser-owner@memberpass.test";
const MANAGER: &str = "policy-browser-manager@memberpass.test";

#[tokio::test]
async fn an_owner_sets_the_token_policy_and_a_managers_mint_form_follows_it() {
    let app = spawn_app().await;
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    person(&app, &w.team_a, MANAGER, Role::Manager).await;
    let writer = app
        .mint(MANAGER, &w.team_a, &[Ability::ProjectView, Ability::ProjectUpdate], &[])
        .await;

    b.sign_in(OWNER).await;
    b.follow("#token-policy-link").await;
    b.wait_for_path("/settings/token-policy").await;
    b.fill("max-lifetime", "90").await;
    b.js("document.getElementById('role-manager').value = 'reads'").await;
    b.follow("#save-token-policy").await;
    b.wait_for_path("/settings/token-policy?saved").await;
    assert!(b.text_of("#token-policy-notice").await.contains("Policy saved"));
    assert_eq!(
        b.js("return [document.getElementById('max-lifetime').value, document.getElementById('role-manager').value]")
            .await,
        json!(["90", "reads"])
    );
    b.screenshot("token-policy").await;

    // The manager's form follows it: reads only, no "Never", at most 90 days.
    drop(b);
    let b2 = Browser::start(&app.base).await.expect("a second browser");
    b2.sign_in(MANAGER).await;
    let offered = b2
        .js(
            "return [Array.from(document.querySelectorAll('#expires option')).map(o => o.value), \
             document.querySelector('input[name=ability][value=\"project:update\"]').disabled, \
             document.querySelector('input[name=ability][value=\"project:view\"]').disabled]",
        )
        .await;
    assert_eq!(offered, json!([["7", "30", "90"], true, false]), "{offered}");
    let text = b2.text().await;
    assert!(
        text.contains(&token_id(&writer)) && text.contains("breaks the team's token policy"),
        "the manager is told about the write token: {text}"
    );
    b2.screenshot("tokens-under-policy").await;
}
