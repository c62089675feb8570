// Approvals (issue 20) with the TypeScript SDK: a held destructive call is a tool result
// (isError, APPROVAL_REQUIRED, the page where a person decides), never a protocol error; a person
// approves on the dashboard (headless Chromium, ../oauth/person.mjs); the same call then runs
// once, and repeating it answers APPROVAL_INVALID (reason used).

import { person } from '../oauth/common.mjs';
import {
    CHECK_TIMEOUT_MS, CheckFailed, URL_, check, closeQuietly, describeError, expect, newClient, textOf, truncate,
} from './harness.mjs';

// Chromium starts, signs in, opens the page, clicks: more than one tool call takes.
const PERSON_TIMEOUT_MS = Math.max(CHECK_TIMEOUT_MS, 90000);

const errorOf = (result) => result.structuredContent?.error ?? {};
const shown = (result) => truncate(textOf(result) || JSON.stringify(result.structuredContent), 600);

/** A held call's answer, checked to the letter of issue 20; returns its request's id and URL. */
function expectHeld(r) {
    const e = errorOf(r);
    expect(r.isError === true, `isError is ${r.isError}: ${shown(r)}`);
    expect(e.code === 'APPROVAL_REQUIRED', `error code ${e.code}: ${shown(r)}`);
    expect(typeof e.approval_id === 'string' && e.approval_id, `no approval_id: ${shown(r)}`);
    const page = `${URL_.origin}/settings/approvals/${e.approval_id}`;
    expect(e.approval_url === page, `approval_url ${e.approval_url}, expected ${page}`);
    const sentence = `A person must approve this on ${page}; then call the same tool again with the same arguments.`;
    expect(e.message === sentence, `message ${JSON.stringify(e.message)}, expected ${JSON.stringify(sentence)}`);
    const texts = r.content.filter((x) => x.type === 'text').map((x) => x.text);
    expect(texts[1] === sentence, `the second text block is not the sentence: ${truncate(JSON.stringify(texts), 600)}`);
    return { id: e.approval_id, url: e.approval_url };
}

/** The scenario with `token` (mcp:full, project:view-any, project-user:view-any, project-user:view, project-user:update). */
export async function approvalChecks(token) {
    if (!token) {
        console.log('SKIP ts: approvals (no MP_TOKEN_APPROVAL: run.sh found no Chromium for the person)');
        return;
    }
    let conn = null;
    // Runs fn on the scenario's connection; its HTTP exchanges become the check's evidence.
    const on = async (log, fn) => {
        expect(conn, 'not connected (an earlier check failed)');
        conn.log.length = 0;
        try {
            return await fn(conn.client);
        } finally {
            log.push(...conn.log);
        }
    };
    let args = null;
    let held = null;

    await check('approvals: connect; list_subscribers finds a customer of a demo project', async (log) => {
        const { client, transport } = newClient(token, log);
        await client.connect(transport);
        conn = { client, log };
        const projects = await client.callTool({ name: 'list_projects', arguments: {} });
        expect(!projects.isError, `list_projects: ${shown(projects)}`);
        for (const p of projects.structuredContent.data) {
            const r = await client.callTool({ name: 'list_subscribers', arguments: { project_id: p.id, status: 'customer' } });
            expect(!r.isError, `list_subscribers: ${shown(r)}`);
            const [m] = r.structuredContent.data;
            if (m) {
                args = { member_id: m.id, reason: 'interop ts: approvals' };
                return `${m.display_name} (${m.id}) of ${p.name}`;
            }
        }
        throw new Error('no customer in any demo project');
    });

    await check('approvals: kick_member is held — a tool result with isError, APPROVAL_REQUIRED and the URL', (log) => on(log, async (c) => {
        expect(args, 'no member (an earlier check failed)');
        held = expectHeld(await c.callTool({ name: 'kick_member', arguments: args }));
        const m = await c.callTool({ name: 'get_member', arguments: { member_id: args.member_id } });
        expect(m.structuredContent?.data?.status === 'customer', `the held call changed the member: ${shown(m)}`);
        return held.url;
    }));

    // What an agent does first. The SDK then validates every result of a tool against its
    // outputSchema, an isError one too (typescript-sdk#1943), and throws instead of returning it.
    await check('approvals: after tools/list, as an agent calls, the held call is still that tool result', async (log) => {
        expect(held, 'nothing held (an earlier check failed)');
        const { client, transport } = newClient(token, log);
        try {
            await client.connect(transport);
            const names = (await client.listTools()).tools.map((t) => t.name);
            expect(names.includes('kick_member'), `kick_member missing from tools/list: [${names.join(', ')}]`);
            let r;
            try {
                r = await client.callTool({ name: 'kick_member', arguments: args });
            } catch (e) {
                throw new CheckFailed(`the SDK threw instead of returning the tool result: ${describeError(e)}` +
                    ' (it checks an isError result\'s structuredContent against the outputSchema: typescript-sdk#1943)');
            }
            const again = expectHeld(r);
            expect(again.id === held.id, `another request ${again.id}, expected the pending ${held.id}`);
            return `the pending request again: ${again.id}`;
        } finally {
            await closeQuietly(client);
        }
    });

    await check('approvals: a person approves on the dashboard (Chromium: #approve → granted)', async () => {
        expect(held, 'nothing held (an earlier check failed)');
        const run = await person(['approve', '--url', held.url, '--expect', 'kick_member']);
        expect(run.ok, `the person could not approve: ${truncate(JSON.stringify(run), 900)}`);
        expect(run.status === 'granted' && run.approval_id === held.id, `the person saw ${JSON.stringify(run)}`);
        return JSON.stringify(run);
    }, PERSON_TIMEOUT_MS);

    await check('approvals: the same call again runs (isError false, member churned)', (log) => on(log, async (c) => {
        expect(held, 'nothing held (an earlier check failed)');
        const r = await c.callTool({ name: 'kick_member', arguments: args });
        expect(!r.isError, `isError is ${r.isError}: ${shown(r)}`);
        const m = r.structuredContent?.data;
        expect(m?.id === args.member_id && m.status === 'churned', `the member is not churned: ${shown(r)}`);
        return `${m.id} ${m.status}`;
    }));

    await check('approvals: a third call answers APPROVAL_INVALID, reason used', (log) => on(log, async (c) => {
        expect(held, 'nothing held (an earlier check failed)');
        const r = await c.callTool({ name: 'kick_member', arguments: args });
        const e = errorOf(r);
        expect(r.isError === true, `isError is ${r.isError}: ${shown(r)}`);
        expect(e.code === 'APPROVAL_INVALID' && e.reason === 'used', `error ${e.code} reason ${e.reason}: ${shown(r)}`);
        expect(e.approval_id === held.id, `approval_id ${e.approval_id}, expected ${held.id}`);
        return e.message;
    }));

    if (conn) await closeQuietly(conn.client);
}
