//! The usage chart in a real browser (issue 21, item 2): on a token's page at 1280 and 390 px the
//! chart is there, labelled (`role="img"`, its title), with its text equivalent, and nothing
//! scrolls sideways; the tokens list shows a labelled sparkline per row.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::domain::usage::{date_of, day_of};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::dashboard::person;
use crate::helpers::{spawn_app, token_id};

const DASH: &str = "chart@memberpass.test";

#[tokio::test]
async fn the_usage_chart_is_labelled_has_its_text_and_fits_at_1280_and_390_px() {
    let app = spawn_app().await;
    let w = app.world().await;
    app.hold_nothing(&w.team_a).await;
    person(&app, &w.team_a, DASH, Role::Manager).await;
    let token = app
        .mint(DASH, &w.team_a, &[Ability::ProjectView, Ability::ProjectUpdate], &[])
        .await;
    let id = token_id(&token);
    let project = format!("/v1/projects/{}", w.p1);
    // Today: 3 reads, a write, a refusal. The 29 days before: a month of traffic, seeded.
    for _ in 0..3 {
        assert_eq!(app.get(&project, &token).await.status, 200);
    }
    let write = app
        .call(
            reqwest::Method::PATCH,
            &project,
            Some(&token),
            Some(json!({"name": "Charted"})),
        )
        .await;
    assert_eq!(write.status, 200, "{:#}", write.body);
    assert_eq!(
        app.get(&format!("/v1/teams/{}/tokens", w.team_a), &token).await.status,
        403
    );
    let today = day_of(memberpass::store::now_ms());
    let mut seeded = 0;
    for back in 1..30i64 {
        if back % 6 == 0 {
            continue;
        }
        let (s, r, wr) = ((back * 7) % 23 + 2, if back % 5 == 0 { 3 } else { 0 }, back % 4);
        seeded += s + r;
        sqlx::query(
            "INSERT INTO token_usage_daily (token_id, day, team_id, successes, refusals, writes) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(today - back)
        .bind(&w.team_a)
        .bind(s)
        .bind(r)
        .bind(wr)
        .execute(app.pool())
        .await
        .unwrap();
    }
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    b.sign_in(DASH).await;

    // The list: a sparkline in the token's row, labelled with its total.
    let spark = b
        .js(&format!(
            "const s = document.querySelector('a[href=\"/settings/tokens/{id}\"]').closest('tr').querySelector('svg.sparkline');\
             return s && [s.getAttribute('role'), s.getAttribute('aria-label')]"
        ))
        .await;
    assert_eq!(spark[0], "img", "{spark}");
    assert!(
        spark[1]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} calls in 30 days (", seeded + 5)),
        "{spark}"
    );

    b.goto(&format!("/settings/tokens/{id}")).await;
    let chart = b
        .js("const s = document.querySelector('svg.usage-chart');\
             if (!s) return null;\
             const t = document.getElementById(s.getAttribute('aria-labelledby'));\
             const d = document.getElementById(s.getAttribute('aria-describedby'));\
             return {role: s.getAttribute('role'), title_tag: t && t.tagName, title: t && t.textContent,\
                     summary: d && d.textContent, bars: s.querySelectorAll('g.u-day').length,\
                     writes: s.querySelectorAll('rect.u-write').length, refusals: s.querySelectorAll('rect.u-refusal').length,\
                     table: document.querySelectorAll('#usage-table tbody tr').length,\
                     scripts: document.querySelectorAll('script').length}")
        .await;
    assert_eq!(chart["role"], "img", "{chart:#}");
    assert_eq!(chart["title_tag"], "title");
    assert_eq!(
        chart["title"],
        "Calls per day of the token “test token”, the last 30 days (UTC)"
    );
    let summary = chart["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("{} calls in the last 30 days: ", seeded + 5)),
        "{summary}"
    );
    assert_eq!(chart["bars"], 30, "one bar per day");
    assert!(chart["writes"].as_u64().unwrap() >= 2 && chart["refusals"].as_u64().unwrap() >= 2);
    // The text equivalent: a row per day with calls (25 seeded days and today).
    assert_eq!(chart["table"], 26, "{chart:#}");
    assert_eq!(chart["scripts"], 0, "the token page runs no script");
    let today_row = b
        .js(&format!(
            "return Array.from(document.querySelectorAll('#usage-table tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent))\
             .find(r => r[0] === '{}')",
            date_of(today)
        ))
        .await;
    assert_eq!(today_row, json!([date_of(today), "4", "1", "1"]));

    // Opened, the text equivalent fits too.
    b.click("#usage-table summary").await;
    for width in [1280u32, 390] {
        b.client.set_window_size(width, 900).await.unwrap();
        let fit: Value = b
            .js("const e = document.documentElement; const s = document.querySelector('svg.usage-chart').getBoundingClientRect();\
                 return [e.scrollWidth, e.clientWidth, Math.ceil(s.right), s.width]")
            .await;
        let [scroll, client, right, chart_width] = [0, 1, 2, 3].map(|i| fit[i].as_f64().unwrap());
        assert!(scroll <= client, "sideways scroll at {width} px: {fit}");
        assert!(right <= client, "the chart leaves the page at {width} px: {fit}");
        assert!(chart_width >= 250.0, "the chart is readable at {width} px: {fit}");
    }
    b.client.set_window_size(1280, 900).await.unwrap();
    // The screenshots show the text equivalent opened.
    b.screenshot("token-usage").await;
}
