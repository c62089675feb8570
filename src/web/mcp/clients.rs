//! Ready-to-paste client configurations for a server URL and a token: the demo's output and the
//! dashboard's "shown once" page print the same ones.

use serde_json::{Value, json};

/// Claude Desktop (`claude_desktop_config.json`) through `mcp-remote`, the token kept in `env`.
pub fn claude_desktop(url: &str, token: &str) -> Value {
    json!({"mcpServers": {"memberpass": {"command": "npx",
        "args": ["-y", "mcp-remote", format!("{url}/mcp"), "--header", "Authorization:${AUTH_TOKEN}"],
        "env": {"AUTH_TOKEN": format!("Bearer {token}")}}}})
}

/// Cursor (`~/.cursor/mcp.json`).
pub fn cursor(url: &str, token: &str) -> Value {
    json!({"mcpServers": {"memberpass": {"url": format!("{url}/mcp"),
        "headers": {"Authorization": format!("Bearer {token}")}}}})
}

/// VS Code (`.vscode/mcp.json`): the token is asked for once and kept in VS Code's secrets.
pub fn vscode(url: &str) -> Value {
    json!({"inputs": [{"type": "promptString", "id": "memberpass-token",
        "description": "MemberPass token", "password": true}],
        "servers": {"memberpass": {"type": "http", "url": format!("{url}/mcp"),
        "headers": {"Authorization": "Bearer ${input:memberpass-token}"}}}})
}
