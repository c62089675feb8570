//! The MCP server rmcp runs for each request: the tool list filtered by the caller, each tool
//! call through the service's one call path, the resources. The caller is the one the guard
//! authenticated, read from the request.

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use rmcp::model::{
    ElicitRequest, ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult, ProtocolVersion,
};

use super::guard::McpCaller;
use crate::domain::error::{ApprovalNotice, Error};
use crate::domain::text;
use crate::service::Service;
use crate::service::core::op::Input;
use crate::service::ops::catalog;

#[derive(Clone)]
pub struct McpServer {
    service: Service,
}

impl McpServer {
    pub(super) fn new(service: Service) -> Self {
        McpServer { service }
    }
}

fn caller(context: &RequestContext<RoleServer>) -> Result<McpCaller, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request was not authenticated", None))
}

/// The MCP client's name and version, as the request's `_meta` gives them (protocol 2026-07-28
/// sends `io.modelcontextprotocol/clientInfo` on every request). Nothing else names the client
/// of a `tools/call`: stateless, there is no `initialize` to remember, and rmcp's stand-in peer
/// info is its own placeholder. A label the caller chose: unsafe characters replaced, capped.
fn client_of(context: &RequestContext<RoleServer>) -> Option<String> {
    let info = context.meta.client_info()?;
    let name = text::label(&info.name, CLIENT_NAME_MAX)?;
    Some(match text::label(&info.version, CLIENT_VERSION_MAX) {
        Some(version) => format!("{name}/{version}"),
        None => name,
    })
}

/// Longest client name and version an audit entry keeps.
const CLIENT_NAME_MAX: usize = 100;
const CLIENT_VERSION_MAX: usize = 50;

/// Whether the client opens a URL for its person and retries by itself (protocol 2026-07-28's
/// input-required result with a URL elicitation): it speaks that protocol and says it can.
fn opens_urls(context: &RequestContext<RoleServer>) -> bool {
    let modern = context
        .meta
        .protocol_version()
        .is_some_and(|v| v.to_string().as_str() >= ProtocolVersion::V_2026_07_28.to_string().as_str());
    let url = context
        .meta
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some());
    modern && url
}

/// A held call as an input-required result: one URL elicitation pointing the person at the
/// approval page. The client retries the same call once its person is done; the retry meets the
/// approval (or its absence) by what it is — same token, same call — never by `requestState`,
/// which the client could change: that only echoes the approval's id.
fn approval_elicitation(notice: &ApprovalNotice) -> InputRequiredResult {
    let params = ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: notice.message.clone(),
        url: notice.url.clone(),
        elicitation_id: notice.approval_id.clone(),
    };
    let requests = InputRequests::from([(
        "approval".to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(params)),
    )]);
    InputRequiredResult::new(Some(requests), Some(notice.approval_id.clone()))
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("memberpass", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "MemberPass: a creator's membership business (projects, plans, members, subscriptions, access codes). \
                 Each tool is one operation; its description names the ability it needs. A refused call returns \
                 isError with the reason and how to fix it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let McpCaller { caller, .. } = caller(&context)?;
        let outlook = self
            .service
            .approval_outlook(&caller)
            .await
            .map_err(|e| McpError::internal_error(format!("the approval policy could not be read: {e}"), None))?;
        let tools = catalog::all()
            .zip(super::tools::all())
            .filter(|(op, _)| op.spec().ability.is_none_or(|a| caller.can(a)))
            .filter(|(op, _)| caller.narrowed_out(op.spec().name, op.spec().is_write()).is_none())
            .map(|(op, tool)| super::tools::as_seen(tool, op, &outlook))
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
        // The list depends on the token: never cache it for anyone else.
        result.cache_scope = Some(CacheScope::Private);
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let McpCaller { mut caller, docs_base } = caller(&context)?;
        let Some(op) = catalog::find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("no tool named {}", request.name),
                None,
            ));
        };
        caller.ctx.client = client_of(&context);
        let args = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.service.call(op, &caller, Input::json(args)).await {
            Err(Error::ApprovalRequired(notice)) if opens_urls(&context) => {
                return Ok(CallToolResponse::InputRequired(approval_elicitation(&notice)));
            }
            Ok(done) => {
                let output =
                    serde_json::to_value(&done.output).map_err(|e| McpError::internal_error(e.to_string(), None))?;
                CallToolResult::structured(output)
            }
            Err(e) => {
                let body = crate::web::error::ApiError::from(e).body;
                let request_id = caller.ctx.request_id.clone().unwrap_or_default();
                let envelope = body.envelope(&request_id, &docs_base);
                let mut result = CallToolResult::structured_error(envelope);
                result.content.push(ContentBlock::text(super::tools::relayable(&body)));
                result
            }
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let resources = super::tools::RESOURCES
            .iter()
            .map(|(uri, name, _)| {
                let mut r = Resource::new(*uri, *name);
                r.mime_type = Some("application/json".into());
                r
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let Some((uri, _, content)) = super::tools::RESOURCES.iter().find(|(uri, _, _)| *uri == request.uri) else {
            return Err(McpError::resource_not_found(
                "no such resource",
                Some(json!({"uri": request.uri})),
            ));
        };
        let text = serde_json::to_string_pretty(&content()).unwrap_or_default();
        let contents = match ResourceContents::text(text, *uri) {
            ResourceContents::TextResourceContents { uri, text, meta, .. } => ResourceContents::TextResourceContents {
                uri,
                mime_type: Some("application/json".into()),
                text,
                meta,
            },
            other => other,
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}
