//! A protocol 2026-07-28 client that opens URLs for its person (issue 20, item 2): rmcp's own
//! client, declaring URL elicitation, gets a held call as an input-required result pointing at
//! the approval page, "opens" it — here, the person approves as the dashboard would — and
//! retries by itself; the retry runs the call once. A client that does not declare URL
//! elicitation gets the `isError` result instead.

use std::sync::{Arc, Mutex};

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::service::{Caller, Service};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationCapability, Implementation, ProtocolVersion, UrlElicitationCapability,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_client::{StreamableHttpClientTransport, StreamableHttpClientTransportConfig};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData as McpError, RoleClient};
use serde_json::json;

use crate::approvals::person;
use crate::helpers::{OWNER_A, spawn_app};

/// An MCP client whose person approves every approval page it is sent to.
#[derive(Clone)]
struct Approving {
    service: Service,
    person: Caller,
    opened: Arc<Mutex<Vec<(String, String)>>>,
    url_capable: bool,
}

impl ClientHandler for Approving {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        if self.url_capable {
            capabilities.elicitation = Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
        }
        ClientConfig::new(capabilities, Implementation::new("approving-test-client", "1.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ElicitRequestParams::UrlElicitationParams {
            url, elicitation_id, ..
        } = request
        else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        self.opened.lock().unwrap().push((url.clone(), elicitation_id.clone()));
        let id = url.rsplit('/').next().unwrap().to_owned();
        self.service
            .decide_approval(&self.person, &id, true)
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(ElicitResult::new(ElicitationAction::Accept))
    }
}

#[tokio::test]
async fn a_client_that_opens_urls_gets_the_approval_page_and_retries_by_itself() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let owner = person(&app, &w.team_a, OWNER_A, Role::Owner).await;
    let connect = |url_capable: bool| {
        let handler = Approving {
            service: app.service.clone(),
            person: owner.clone(),
            opened: Arc::default(),
            url_capable,
        };
        let transport = StreamableHttpClientTransport::with_client(
            reqwest::Client::new(),
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", app.base)).auth_header(token.clone()),
        );
        // Protocol 2026-07-28: `server/discover`, then every request carries the client's
        // capabilities in its `_meta` (there is no session to remember them).
        let modern = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        (handler.clone(), async move {
            handler
                .serve_with_lifecycle(transport, modern)
                .await
                .expect("rmcp connects")
        })
    };

    // The held tool says so before it is called.
    let (_, mcp) = connect(true);
    let mcp = mcp.await;
    let tools = mcp.list_all_tools().await.unwrap();
    let kick = tools.iter().find(|t| t.name == "kick_member").unwrap();
    assert!(
        kick.description
            .as_deref()
            .unwrap()
            .contains("Needs a person's approval"),
        "{kick:?}"
    );
    let meta = serde_json::to_value(&kick.meta).unwrap();
    assert_eq!(meta["io.memberpass/approval"]["required"], true, "{meta:#}");
    let list = tools.iter().find(|t| t.name == "list_projects").unwrap();
    assert!(!list.description.as_deref().unwrap().contains("approval"));
    drop(mcp);

    let (handler, mcp) = connect(true);
    let mcp = mcp.await;
    let args = json!({"member_id": w.member, "reason": "approved through elicitation"});
    let result = mcp
        .call_tool(CallToolRequestParams::new("kick_member").with_arguments(args.as_object().unwrap().clone()))
        .await
        .expect("the call completes after the person approves");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let opened = handler.opened.lock().unwrap().clone();
    assert_eq!(opened.len(), 1, "one page opened: {opened:?}");
    assert!(
        opened[0].0.starts_with(&format!("{}/settings/approvals/", app.base)),
        "{opened:?}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM members WHERE id = $1")
        .bind(&w.member)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(status, "churned");
    let used: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM approval_requests")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(used, [(opened[0].1.clone(), "used".to_owned())]);
    drop(mcp);

    // A client that cannot open URLs gets the tool result with the URL to relay.
    let (handler, mcp) = connect(false);
    let mcp = mcp.await;
    let args = json!({"member_id": w.member, "reason": "no elicitation"});
    let result = mcp
        .call_tool(CallToolRequestParams::new("kick_member").with_arguments(args.as_object().unwrap().clone()))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let error = &result.structured_content.as_ref().unwrap()["error"];
    assert_eq!(error["code"], "APPROVAL_REQUIRED", "{error:#}");
    assert!(handler.opened.lock().unwrap().is_empty());
}
