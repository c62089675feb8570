// MemberPass /mcp interoperability checks with the official MCP TypeScript SDK client.
//
// Environment (set by tests/interop/run.sh):
//   MCP_URL                 http://127.0.0.1:<port>/mcp
//   MP_TOKEN_RW             mcp:full + project:view-any + project:create
//   MP_TOKEN_NO_MCP         project:view-any only (no mcp:full)
//   MP_TOKEN_NO_CREATE      mcp:full + project:view-any (no project:create)
//   MP_TOKEN_REVOKED        a token revoked before use
//   MP_TOKEN_APPROVAL       mcp:full + project:view-any + project-user:view-any + project-user:view
//                           + project-user:update, for the approval checks (approval.mjs); empty: skipped
//   MP_PERSON_EMAIL, MP_PERSON_PASSWORD   the person who approves (read by ../oauth/person.mjs)
//   CHECK_TIMEOUT_MS        per-check timeout (default 20000)
//
// Prints one line per check ("PASS ts: …" / "FAIL ts: …") and exits 1 if any check failed.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { approvalChecks } from './approval.mjs';
import {
    CheckFailed, URL_, check, closeQuietly, describeError, env, expect, newClient, results, textOf, truncate,
} from './harness.mjs';

// The package's "exports" do not expose package.json; read it from node_modules directly.
const SDK_VERSION = JSON.parse(
    readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
).version;

const TOKENS = {
    rw: env('MP_TOKEN_RW'),
    noMcp: env('MP_TOKEN_NO_MCP'),
    noCreate: env('MP_TOKEN_NO_CREATE'),
    revoked: env('MP_TOKEN_REVOKED'),
};

// Connect with a token that must be refused at the HTTP layer; returns the error seen.
async function expectRefused(token, log) {
    const { client, transport } = newClient(token, log);
    try {
        await client.connect(transport);
    } catch (e) {
        return e;
    }
    try {
        const tools = await client.listTools();
        throw new CheckFailed(`connect and tools/list both succeeded (${tools.tools.length} tools listed)`);
    } catch (e) {
        if (e instanceof CheckFailed) throw e;
        return e;
    } finally {
        await closeQuietly(client);
    }
}

// ---------------------------------------------------------------------------------------------

console.log(`ts: @modelcontextprotocol/sdk ${SDK_VERSION} on node ${process.version} → ${URL_}`);

// One connected client for the read/write token, reused by the checks that follow it.
let rw = null;

await check('connect (initialize) with the read/write token', async (log) => {
    const { client, transport } = newClient(TOKENS.rw, log);
    await client.connect(transport);
    rw = { client, transport, log };
    const info = client.getServerVersion();
    return `server ${info?.name ?? '?'} ${info?.version ?? '?'}, protocol ${transport.protocolVersion ?? '?'}`;
});

await check('tools/list includes list_projects and create_project', async (log) => {
    expect(rw, 'not connected (previous check failed)');
    rw.log.length = 0;
    try {
        const { tools } = await rw.client.listTools();
        const names = tools.map((t) => t.name);
        for (const want of ['list_projects', 'create_project']) {
            expect(names.includes(want), `${want} missing from tools/list: [${names.join(', ')}]`);
        }
        return `${names.length} tools`;
    } finally {
        log.push(...rw.log);
    }
});

await check('tools/call list_projects {} returns structuredContent.data as an array', async (log) => {
    expect(rw, 'not connected (previous check failed)');
    rw.log.length = 0;
    try {
        const result = await rw.client.callTool({ name: 'list_projects', arguments: {} });
        expect(!result.isError, `isError: true: ${truncate(textOf(result) || JSON.stringify(result.structuredContent))}`);
        const sc = result.structuredContent;
        expect(sc && typeof sc === 'object', `no structuredContent: ${truncate(JSON.stringify(result))}`);
        expect(Array.isArray(sc.data), `structuredContent.data is not an array: ${truncate(JSON.stringify(sc))}`);
        return `${sc.data.length} projects`;
    } finally {
        log.push(...rw.log);
    }
});

await check('tools/call list_projects: text content is the same JSON as structuredContent', async (log) => {
    expect(rw, 'not connected (previous check failed)');
    rw.log.length = 0;
    try {
        const result = await rw.client.callTool({ name: 'list_projects', arguments: {} });
        const text = textOf(result);
        let parsed;
        try {
            parsed = JSON.parse(text);
        } catch (e) {
            throw new CheckFailed(`text content is not JSON: ${truncate(text, 300)}`);
        }
        expect(
            JSON.stringify(parsed) === JSON.stringify(result.structuredContent),
            `text JSON differs from structuredContent: text=${truncate(text, 300)}`,
        );
    } finally {
        log.push(...rw.log);
    }
});

await check('tools/call create_project succeeds and returns structuredContent.data.id', async (log) => {
    expect(rw, 'not connected (previous check failed)');
    rw.log.length = 0;
    try {
        const name = `Interop TS ${randomBytes(4).toString('hex')}`;
        const result = await rw.client.callTool({ name: 'create_project', arguments: { name } });
        expect(!result.isError, `isError: true: ${truncate(textOf(result) || JSON.stringify(result.structuredContent))}`);
        const data = result.structuredContent?.data;
        expect(data && typeof data.id === 'string', `structuredContent.data.id is not a string: ${truncate(JSON.stringify(result))}`);
        expect(data.name === undefined || data.name === name, `name came back as ${JSON.stringify(data.name)}, sent ${JSON.stringify(name)}`);
        return `created ${data.id} (${name})`;
    } finally {
        log.push(...rw.log);
    }
});

if (rw) await closeQuietly(rw.client);

await check('token without project:create: create_project is a tool result with isError naming project:create', async (log) => {
    const { client, transport } = newClient(TOKENS.noCreate, log);
    try {
        await client.connect(transport);
        const result = await client.callTool({
            name: 'create_project',
            arguments: { name: `Interop TS refused ${randomBytes(4).toString('hex')}` },
        });
        const text = textOf(result);
        const structured = JSON.stringify(result.structuredContent ?? null);
        expect(result.isError === true, `isError is ${result.isError}: ${truncate(text || structured)}`);
        expect(
            text.includes('project:create') || structured.includes('project:create'),
            `neither text nor structuredContent mentions project:create: text=${truncate(text, 400)} structured=${truncate(structured, 400)}`,
        );
        const code = result.structuredContent?.error?.code;
        return `error code ${code ?? '(none in structuredContent.error.code)'}`;
    } finally {
        await closeQuietly(client);
    }
});

await check('token without project:create: tools/list omits create_project (SPEC §6)', async (log) => {
    const { client, transport } = newClient(TOKENS.noCreate, log);
    try {
        await client.connect(transport);
        const { tools } = await client.listTools();
        const names = tools.map((t) => t.name);
        expect(names.includes('list_projects'), `list_projects missing: [${names.join(', ')}]`);
        expect(!names.includes('create_project'), `create_project listed for a token without project:create`);
        return `${names.length} tools`;
    } finally {
        await closeQuietly(client);
    }
});

await check('revoked token: refused with HTTP 401 / AUTHENTICATION_REQUIRED', async (log) => {
    const e = await expectRefused(TOKENS.revoked, log);
    const desc = describeError(e);
    expect(e?.code === 401 || /AUTHENTICATION_REQUIRED/.test(desc), `refused, but not with 401/AUTHENTICATION_REQUIRED: ${desc}`);
    const r401 = log.find((x) => x.status === 401);
    expect(
        r401 && /^Bearer\b/i.test(r401.wwwAuthenticate ?? ''),
        `the 401 has no "WWW-Authenticate: Bearer" header (SPEC §6): ${r401?.wwwAuthenticate ?? 'none'}`,
    );
    return desc;
});

await check('token without mcp:full: refused with HTTP 403 / TOKEN_MISSING_ABILITY mcp:full', async (log) => {
    const e = await expectRefused(TOKENS.noMcp, log);
    const desc = describeError(e);
    expect(
        e?.code === 403 || /TOKEN_MISSING_ABILITY/.test(desc) || /mcp:full/.test(desc),
        `refused, but not with 403/TOKEN_MISSING_ABILITY/mcp:full: ${desc}`,
    );
    return desc;
});

await approvalChecks(process.env.MP_TOKEN_APPROVAL);

const failed = results.filter((r) => !r.ok);
console.log(`ts: ${results.length - failed.length}/${results.length} checks passed`);
process.exit(failed.length ? 1 : 0);
