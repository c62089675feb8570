//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (`chromedriver`) by fantoccini. Each test starts its own chromedriver on a free loopback
//! port with a fresh profile directory and kills its whole process group when it ends.
//!
//! Every page a test visits is screenshot at 1280 px and 390 px (`target/screenshots/`, or
//! `docs/screenshots/` with `MEMBERPASS_UPDATE_DOCS=1`) and checked on the way: every control
//! has a label, nothing overflows sideways at either width.
//!
//! Without `chromedriver` these tests say so and pass, so that `cargo test` works on a machine
//! without a browser; `.ci/run` installs Chromium and sets `MEMBERPASS_BROWSER_TESTS=required`,
//! which turns a missing browser into a failure.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use serde_json::{Value, json};

use crate::dashboard::{PASSWORD, person};
use crate::helpers::{TestApp, spawn_app, spawn_with, token_id};

const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    profile: PathBuf,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and every Chromium process it started share one process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A fresh headless Chromium for the server at `base`; `None` (after saying why) when no
    /// chromedriver is installed and the browser tests are not required.
    pub(crate) async fn start(base: &str) -> Option<Browser> {
        let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        if !Path::new(&driver).exists() {
            assert_ne!(
                std::env::var("MEMBERPASS_BROWSER_TESTS").as_deref(),
                Ok("required"),
                "MEMBERPASS_BROWSER_TESTS=required but there is no chromedriver at {driver}"
            );
            eprintln!(
                "browser test skipped: no chromedriver at {driver} (apt-get install chromium chromium-driver; .ci/run does)"
            );
            return None;
        }
        let profile = std::env::temp_dir().join(format!("memberpass-chromium-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&profile).unwrap();
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--lang=en-US".to_owned(),
            "--window-size=1280,900".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut options = json!({ "args": args });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let capabilities = json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let capabilities = capabilities.as_object().unwrap().clone();
        // A port taken between choosing and binding makes chromedriver exit: choose another.
        for _ in 0..5 {
            let port = free_port();
            // Chromium's own temporary files (`org.chromium.Chromium.*`) go under the profile,
            // which Drop removes: the test leaves nothing behind in /tmp.
            let tmp = profile.join("tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .env("TMPDIR", &tmp)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts");
            let started = Instant::now();
            let mut listening = false;
            while started.elapsed() < WAIT {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    listening = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Some(Browser {
                client: match listening {
                    true => {
                        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                        ClientBuilder::new(connector)
                            .capabilities(capabilities.clone())
                            .connect(&format!("http://127.0.0.1:{port}"))
                            .await
                            .expect("a Chromium session")
                    }
                    false => {
                        let _ = child.kill();
                        let _ = child.wait();
                        continue;
                    }
                },
                driver: child,
                profile: profile.clone(),
                base: base.to_owned(),
            });
        }
        panic!("chromedriver did not start on five free ports");
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub(crate) async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the page's path (and query) starts with `prefix`.
    pub(crate) async fn wait_for_path(&self, prefix: &str) {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return;
            }
            assert!(started.elapsed() < WAIT, "still on {path}, waiting for {prefix}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The visible text of the first element `css` selects.
    pub(crate) async fn text_of(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await;
        element.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    pub(crate) async fn text(&self) -> String {
        self.text_of("body").await
    }

    pub(crate) async fn h1(&self) -> String {
        self.text_of("h1").await
    }

    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks something that loads a new page, and waits until that page has loaded.
    pub(crate) async fn follow(&self, css: &str) {
        self.js("window.__memberpass_old_page = true").await;
        self.click(css).await;
        let started = Instant::now();
        loop {
            let state = self
                .client
                .execute(
                    "return [window.__memberpass_old_page === undefined, document.readyState]",
                    vec![],
                )
                .await;
            if matches!(state, Ok(v) if v == json!([true, "complete"])) {
                return;
            }
            assert!(started.elapsed() < WAIT, "{css} did not load a page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn fill(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub(crate) async fn sign_in(&self, email: &str) {
        self.goto("/login").await;
        self.fill("email", email).await;
        self.fill("password", PASSWORD).await;
        self.follow("form[action='/login'] button[type=submit]").await;
        self.wait_for_path("/settings/tokens").await;
    }

    /// The value of the token a "shown once" page shows.
    async fn shown_token(&self) -> String {
        let field = self.client.find(Locator::Id("token")).await.unwrap();
        field.prop("value").await.unwrap().expect("the token field has a value")
    }

    /// Checks the page (labels, no sideways overflow) and saves it at 1280 and 390 px.
    pub(crate) async fn screenshot(&self, name: &str) {
        let unlabelled = self
            .js(
                "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))\
                 .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.outerHTML)",
            )
            .await;
        assert_eq!(unlabelled, json!([]), "{name}: controls without a label");
        let nameless = self
            .js("return Array.from(document.querySelectorAll('button, a')).filter(e => !e.textContent.trim()).map(e => e.outerHTML)")
            .await;
        assert_eq!(nameless, json!([]), "{name}: buttons or links without text");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for width in [1280u32, 390] {
            self.client.set_window_size(width, 900).await.unwrap();
            let [scroll, inner, height, inner_height] = self
                .js("return [document.documentElement.scrollWidth, window.innerWidth, document.documentElement.scrollHeight, window.innerHeight]")
                .await
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect::<Vec<_>>()[..]
            else {
                unreachable!()
            };
            assert!(
                scroll <= inner,
                "{name} is wider than the window at {width} px ({scroll} > {inner})"
            );
            // The window is taller than the page's viewport by the browser's own frame.
            self.client
                .set_window_size(width, (height + 900 - inner_height.min(900)).clamp(600, 4000))
                .await
                .unwrap();
            self.js("window.scrollTo(0, 0)").await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }
}

fn screenshot_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("MEMBERPASS_UPDATE_DOCS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/me", token).await.status.as_u16()
}

/// One MCP `tools/call` with a bearer token, as an agent makes it.
async fn mcp_call(app: &TestApp, token: &str, tool: &str, args: Value) -> Value {
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The rows of the activity or playbook table on the page, as their cells' text (not the usage
/// chart's table of days).
async fn rows(b: &Browser) -> Vec<(String, Vec<String>)> {
    let rows = b
        .js("return Array.from(document.querySelectorAll('table:not(.usage-days) tbody tr')).map(r => [r.className, Array.from(r.cells).map(c => c.textContent.trim())])")
        .await;
    serde_json::from_value(rows).unwrap()
}

/// The table rows of the page at `path` once one matches `wanted`: failed authentications are
/// audited in batches, a moment after the 401, so the page is reloaded until the entry shows.
async fn rows_until(b: &Browser, path: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<(String, Vec<String>)> {
    let started = Instant::now();
    loop {
        let entries = rows(b).await;
        if entries.iter().any(|(_, cells)| wanted(cells)) || started.elapsed() > WAIT {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.goto(path).await;
    }
}

#[tokio::test]
async fn a_person_mints_uses_revokes_and_rotates_tokens_in_a_real_browser() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };

    // Sign in with the keyboard alone; focus is visible on the way.
    b.goto("/login").await;
    b.screenshot("sign-in").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Tab)
        .await
        .unwrap();
    let focused = b
        .js("return [document.activeElement.id, getComputedStyle(document.activeElement).outlineStyle]")
        .await;
    assert_eq!(focused[0], "email", "the first Tab reaches the email field");
    assert_ne!(focused[1], "none", "the focused field shows a focus ring");
    let email = b.client.active_element().await.unwrap();
    email.send_keys("dash@memberpass.test").await.unwrap();
    email.send_keys(&Key::Tab).await.unwrap();
    let password = b.client.active_element().await.unwrap();
    password.send_keys(PASSWORD).await.unwrap();
    password.send_keys(&Key::Enter).await.unwrap();
    b.wait_for_path("/settings/tokens").await;
    assert!(b.text().await.contains("Northwind Creators"), "the page names its team");

    // The mint form: nothing pre-selected, what the role lacks offered disabled with the reason.
    let checked = b
        .js("return document.querySelectorAll('input[name=ability]:checked').length")
        .await;
    assert_eq!(checked, 0, "no ability is pre-selected");
    let disabled = b
        .client
        .find(Locator::Css("input[value='project:delete']"))
        .await
        .unwrap();
    assert!(!disabled.is_enabled().await.unwrap());
    assert!(b.text().await.contains("(your manager role does not hold it)"));
    // Keyboard: Tab reaches an ability box and Space ticks it; disabled boxes are skipped.
    let mut reached = Value::Null;
    for _ in 0..60 {
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&Key::Tab)
            .await
            .unwrap();
        reached = b
            .js("return [document.activeElement.name || '', document.activeElement.disabled]")
            .await;
        if reached[0] == "ability" {
            break;
        }
    }
    assert_eq!(
        reached,
        json!(["ability", false]),
        "Tab reaches the first enabled ability"
    );
    b.client.active_element().await.unwrap().send_keys(" ").await.unwrap();
    assert_eq!(
        b.js("return document.activeElement.checked").await,
        true,
        "Space ticks it"
    );
    b.client.active_element().await.unwrap().send_keys(" ").await.unwrap();

    // The warning grows with the write abilities checked.
    let writes = b
        .js("return Array.from(document.querySelectorAll('input[name=ability][data-writes=true]:not([disabled])')).map(e => e.value)")
        .await;
    let writes: Vec<String> = serde_json::from_value(writes).unwrap();
    let risk = || async { b.client.find(Locator::Id("risk")).await.unwrap().text().await.unwrap() };
    b.click(&format!("input[value='{}']", writes[0])).await;
    assert!(risk().await.contains("can change data (1 write"), "{}", risk().await);
    b.click(&format!("input[value='{}']", writes[1])).await;
    b.click(&format!("input[value='{}']", writes[2])).await;
    assert!(
        risk().await.starts_with("Warning: 3 write abilities"),
        "{}",
        risk().await
    );
    b.screenshot("tokens-mint-warning").await;
    for write in &writes[..3] {
        b.click(&format!("input[value='{write}']")).await;
    }
    assert!(
        !b.client
            .find(Locator::Id("risk"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    b.click("button.secondary").await;
    let all_reads = b
        .js("const r = Array.from(document.querySelectorAll('input[name=ability][data-writes=false]:not([disabled])')); return [r.length, r.filter(e => e.checked).length, document.querySelectorAll('input[name=ability][data-writes=true]:checked').length]")
        .await;
    assert_eq!(all_reads[0], all_reads[1], "\"Select all reads\" ticks every read");
    assert_eq!(all_reads[2], 0, "and no write");
    assert!(risk().await.starts_with("Read-only"));

    // Mint with two abilities.
    b.goto("/settings/tokens").await;
    b.fill("name", "Claude Desktop (browser test)").await;
    b.click("input[value='mcp:full']").await;
    b.click("input[value='project:view-any']").await;
    b.client
        .find(Locator::Id("expires"))
        .await
        .unwrap()
        .select_by_value("30")
        .await
        .unwrap();
    b.screenshot("tokens").await;
    b.follow("#mint button[type=submit]").await;
    assert_eq!(b.h1().await, "Your new token");
    let token = b.shown_token().await;
    let id = token_id(&token);
    let page = b.text().await;
    for config in [
        "mcp-remote",
        "AUTH_TOKEN",
        "claude mcp add",
        ".cursor/mcp.json",
        ".vscode/mcp.json",
        "curl -H",
    ] {
        assert!(page.contains(config), "the minted page shows {config}");
    }
    let copy_buttons = b.js("return document.querySelectorAll('button.copy').length").await;
    assert_eq!(
        copy_buttons, 6,
        "a copy button for the token and for each of the five configurations"
    );
    b.screenshot("token-minted").await;

    // The token works, over REST and MCP, with exactly the two abilities.
    let me_reply = app.get("/v1/me", &token).await;
    assert_eq!(me_reply.status, 200);
    let mut abilities: Vec<String> = serde_json::from_value(me_reply.body["data"]["abilities"].clone()).unwrap();
    abilities.sort();
    assert_eq!(abilities, ["mcp:full", "project:view-any"]);
    let listed = mcp_call(&app, &token, "list_projects", json!({})).await;
    assert_ne!(listed["result"]["isError"], true, "{listed:#}");
    assert!(listed["result"]["structuredContent"]["data"].is_array(), "{listed:#}");

    // Revoke, with confirmation: the next API call is refused.
    b.goto("/settings/tokens").await;
    assert!(b.text().await.contains(&id));
    b.follow(&format!("a[href='/settings/tokens/{id}/revoke']")).await;
    assert!(b.h1().await.contains(&id), "the confirmation names the token");
    b.screenshot("token-revoke").await;
    b.follow("button.danger").await;
    b.wait_for_path(&format!("/settings/tokens/{id}")).await;
    assert_eq!(me(&app, &token).await, 401);

    // Rotate another token: the old secret stops, the new one works.
    let other = app
        .mint("dash@memberpass.test", &w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    let other_id = token_id(&other);
    b.goto("/settings/tokens").await;
    b.follow(&format!("form[action='/settings/tokens/{other_id}/rotate'] button"))
        .await;
    assert_eq!(b.h1().await, "The replacement token");
    let rotated = b.shown_token().await;
    assert_ne!(rotated, other);
    assert_eq!(me(&app, &other).await, 401);
    assert_eq!(me(&app, &rotated).await, 200);

    // The activity log, last 24 hours: the REST and MCP calls of the minted token are there.
    b.goto("/settings/activity").await;
    b.follow("a[href='/settings/activity?preset=24h']").await;
    b.wait_for_path("/settings/activity?preset=24h").await;
    let entries = rows_until(&b, "/settings/activity?preset=24h", |cells| {
        cells[2] == id && cells[3].starts_with("auth.failed")
    })
    .await;
    let of_token = |actor: &str, event: &str| {
        entries
            .iter()
            .any(|(_, cells)| cells[1].starts_with(actor) && cells[2] == id && cells[3].starts_with(event))
    };
    assert!(of_token("api_token", "get_token_info"), "the REST call: {entries:#?}");
    assert!(of_token("mcp", "list_projects"), "the MCP call: {entries:#?}");
    assert!(
        of_token("api_token", "auth.failed"),
        "the call after revocation: {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|(class, cells)| class == "write" && cells[3].starts_with("token.revoked")),
        "the revocation is shown as a write: {entries:#?}"
    );
    b.screenshot("activity").await;
    // Filter by the token: only its entries remain.
    b.fill("f-token_id", &id).await;
    b.follow("form.filters button[type=submit]").await;
    b.wait_for_path("/settings/activity?").await;
    let filtered = rows(&b).await;
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|(_, cells)| cells[2] == id), "{filtered:#?}");
}

#[tokio::test]
async fn the_leaked_token_playbook_walks_from_revocation_to_a_working_replacement() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let leaked = app
        .mint(
            "dash@memberpass.test",
            &w.team_a,
            &[Ability::ProjectView, Ability::ProjectUpdate],
            &[&w.p1],
        )
        .await;
    let id = token_id(&leaked);
    let renamed = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/projects/{}", w.p1),
            Some(&leaked),
            Some(json!({"name": "Renamed by the leak"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    b.sign_in("dash@memberpass.test").await;

    // (1) Revoke now, from the token's page.
    b.goto(&format!("/settings/tokens/{id}")).await;
    b.screenshot("token-playbook").await;
    b.follow("#playbook button.danger").await;
    b.wait_for_path(&format!("/settings/tokens/{id}")).await;
    assert!(b.text().await.contains("Revoked. It stops every request"));
    // Someone tries the leaked token after the revocation.
    assert_eq!(me(&app, &leaked).await, 401);

    // (2) The last 24 hours: this token first, the write highlighted, the attempt after revocation
    // (failed authentications are written in batches, within a moment: reload until it shows).
    let entries = rows_until(&b, &format!("/settings/tokens/{id}"), |cells| {
        cells[3].starts_with("auth.failed")
    })
    .await;
    assert_eq!(entries[0].1[2], id, "this token's entries come first: {entries:#?}");
    assert!(
        entries
            .iter()
            .any(|(class, cells)| class == "write" && cells[2] == id && cells[3].starts_with("update_project")),
        "the leak's write is highlighted: {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|(_, cells)| cells[2] == id && cells[3] == "auth.failed (revoked)"),
        "the use after revocation: {entries:#?}"
    );
    b.screenshot("token-playbook-revoked").await;

    // (5) The ID to quote, and never the secret.
    let page = b.text().await;
    assert!(page.contains(&format!("Quote the token ID {id}")));
    assert!(page.contains("Never send the token itself"));
    assert!(
        !b.client.source().await.unwrap().contains(&leaked[22..]),
        "no secret on the page"
    );

    // (3) and (4): one click mints the replacement, shown once with the client configurations.
    b.follow(&format!("form[action='/settings/tokens/{id}/replace'] button"))
        .await;
    assert_eq!(b.h1().await, "The replacement token");
    let replacement = b.shown_token().await;
    assert!(b.text().await.contains("mcp-remote"));
    let me_reply = app.get("/v1/me", &replacement).await;
    assert_eq!(me_reply.status, 200);
    let mut abilities: Vec<String> = serde_json::from_value(me_reply.body["data"]["abilities"].clone()).unwrap();
    abilities.sort();
    assert_eq!(abilities, ["project:update", "project:view"], "the same abilities");
    assert_eq!(
        me_reply.body["data"]["scopes"],
        json!([format!("scope:team:{}", w.team_a), format!("scope:project:{}", w.p1)]),
        "the same team and project"
    );

    // Every step is on the audit trail, as the person; the replacement names what it replaces.
    let steps: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event, actor_kind, properties FROM audit_log WHERE event IN ('token.revoked', 'token.minted') \
         AND causer_id = (SELECT id FROM users WHERE email = 'dash@memberpass.test') ORDER BY seq",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let events: Vec<(&str, &str)> = steps.iter().map(|(e, k, _)| (e.as_str(), k.as_str())).collect();
    assert_eq!(events, [("token.revoked", "human"), ("token.minted", "human")]);
    let minted: Value = serde_json::from_str(&steps[1].2).unwrap();
    assert_eq!(minted["replaces"], id.as_str());
    assert!(
        b.text().await.contains(&token_id(&replacement)),
        "the replacement's ID is on its page"
    );
    // A second click does not mint a second replacement.
    b.goto(&format!("/settings/tokens/{id}")).await;
    b.follow(&format!("form[action='/settings/tokens/{id}/replace'] button"))
        .await;
    assert_eq!(b.h1().await, "Not possible now");
    assert!(
        b.text()
            .await
            .contains(&format!("already replaced by {}", token_id(&replacement)))
    );
}

/// A page of another origin that posts a form to the dashboard as soon as it loads.
async fn attacker_page(action: String, csrf: String) -> (u16, tokio::task::JoinHandle<()>) {
    let html = format!(
        "<!doctype html><form id=f method=post action=\"{action}\"><input type=hidden name=csrf value=\"{csrf}\"></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (port, server)
}

#[tokio::test]
async fn forged_posts_from_other_sites_and_forms_without_the_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let target = app
        .mint("dash@memberpass.test", &w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    let id = token_id(&target);
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    b.sign_in("dash@memberpass.test").await;
    let csrf = b
        .client
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();

    // Same site, another origin (another port), even holding the real CSRF token: the browser
    // sends the strict cookie, and the origin check refuses.
    let action = format!("{}/settings/tokens/{id}/revoke", app.base);
    let (port, server) = attacker_page(action.clone(), csrf.clone()).await;
    b.client.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    b.wait_for_path(&format!("/settings/tokens/{id}/revoke")).await;
    assert_eq!(b.h1().await, "Not allowed");
    assert!(b.text().await.contains("comes from another site"));
    b.screenshot("error").await;
    server.abort();

    // Another site altogether (localhost is not 127.0.0.1): the strict cookie is not even sent.
    let (port, server) = attacker_page(action, csrf).await;
    b.client.goto(&format!("http://localhost:{port}/")).await.unwrap();
    b.wait_for_path("/login").await;
    server.abort();
    assert_eq!(me(&app, &target).await, 200, "the forged revocations changed nothing");

    // Our own page with the CSRF field taken out: refused, the token not rotated.
    b.goto("/settings/tokens").await;
    b.js(&format!(
        "document.querySelector(\"form[action='/settings/tokens/{id}/rotate'] input[name=csrf]\").remove()"
    ))
    .await;
    b.follow(&format!("form[action='/settings/tokens/{id}/rotate'] button"))
        .await;
    b.wait_for_path(&format!("/settings/tokens/{id}/rotate")).await;
    assert_eq!(b.h1().await, "Not allowed");
    assert_eq!(me(&app, &target).await, 200, "not rotated");
    let changes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE subject_id = $1 AND event IN ('token.revoked', 'token.rotated')",
    )
    .bind(&id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(changes, 0);
}

#[tokio::test]
async fn a_person_of_another_team_sees_none_of_this_teams_tokens_or_entries() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    person(&app, &w.team_b, "rival@memberpass.test", Role::Owner).await;
    // The manager's own batch: only its creator (or an owner or admin) sees and takes it.
    let token_a = app
        .mint(
            "dash@memberpass.test",
            &w.team_a,
            &[Ability::AccessCodeCreate, Ability::ProjectViewAny],
            &[],
        )
        .await;
    let id_a = token_id(&token_a);
    let job = app
        .post(
            &format!("/v1/plans/{}/access-codes", w.plan),
            &token_a,
            json!({"quantity": 3}),
        )
        .await;
    assert_eq!(job.status, 202, "{:#}", job.body);
    while app.service.try_run_one_job().await.unwrap() {}
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };

    // Team A's manager sees their batch waiting for its one download.
    b.sign_in("dash@memberpass.test").await;
    b.goto("/settings/access-codes").await;
    assert!(b.text().await.contains(job.body["data"]["id"].as_str().unwrap()));
    b.screenshot("access-codes").await;
    b.follow("form[action='/logout'] button").await;
    b.wait_for_path("/login").await;

    // Team B's owner: nothing of team A anywhere.
    b.sign_in("rival@memberpass.test").await;
    let page = b.text().await;
    assert!(page.contains("Other Creator Co") && !page.contains("Northwind"));
    assert!(!page.contains(&id_a));
    b.goto("/settings/activity?preset=24h").await;
    let entries = rows(&b).await;
    assert!(!entries.is_empty(), "team B's own sign-in is there");
    assert!(
        entries.iter().all(|(_, cells)| !cells.join(" ").contains(&id_a)),
        "{entries:#?}"
    );
    b.goto(&format!("/settings/activity?token_id={id_a}")).await;
    assert!(rows(&b).await.is_empty(), "filtering by team A's token finds nothing");
    b.goto("/settings/access-codes").await;
    assert!(!b.text().await.contains(job.body["data"]["id"].as_str().unwrap()));
    b.goto(&format!("/settings/tokens/{id_a}")).await;
    assert_eq!(b.h1().await, "Not found");
    b.screenshot("not-found").await;
}
