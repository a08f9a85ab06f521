// Routing between many client sessions and one child session, against a fake
// child connection: ids, progress tokens, cancellations, server requests,
// notifications, subscriptions, and the child going away.
import { describe, expect, it } from '@jest/globals';
import { SUPPORTED_PROTOCOL_VERSIONS as SDK_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import {
  createSessionMultiplexer,
  negotiateProtocolVersion,
  SUPPORTED_PROTOCOL_VERSIONS,
  type ClientChannel,
  type ClientSession,
  type PersistedSession,
  type ReplyChannel,
  type SessionStore,
  type Upstream,
} from '../../../../agent/gateway/session-multiplexer.js';
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcRequest,
  StdioConnection,
} from '../../../../agent/child/stdio-connection.js';
import type { ChildInitializeResult, SupervisorEvent } from '../../../../agent/child/supervisor.js';
import type { Logger } from '../../../../core/logger.js';

class FakeChild implements StdioConnection {
  onmessage: ((message: JsonRpcMessage) => void) | undefined;
  sent: JsonRpcMessage[] = [];
  closed = false;
  private lastId = 100;
  send(message: JsonRpcMessage): boolean {
    // A copy: the multiplexer may reuse the object it handed over.
    this.sent.push(structuredClone(message));
    return !this.closed;
  }
  request(method: string, params: Record<string, unknown>): Promise<unknown> {
    this.sent.push({ jsonrpc: '2.0', id: `agent-${method}`, method, params });
    return Promise.resolve({});
  }
  nextId(): number {
    return ++this.lastId;
  }
  close(): void {
    this.closed = true;
  }
  /** The child says something. */
  say(message: JsonRpcMessage): void {
    this.onmessage!(message);
  }
  lastRequest(): JsonRpcRequest {
    return this.sent
      .filter((message) => 'id' in message && 'method' in message)
      .at(-1) as JsonRpcRequest;
  }
}

const CHILD_INIT: ChildInitializeResult = {
  protocolVersion: '2025-06-18',
  capabilities: { tools: { listChanged: true }, resources: { subscribe: true } },
  serverInfo: { name: 'child', version: '1.0.0' },
  instructions: 'be nice',
};

function setup(store?: SessionStore, logger?: Logger) {
  let listener: ((event: SupervisorEvent) => void) | undefined;
  const upstream: Upstream & {
    connection: StdioConnection | undefined;
    emit(event: SupervisorEvent): void;
  } = {
    connection: new FakeChild(),
    initializeResult: CHILD_INIT,
    subscribe(next) {
      listener = next;
      return () => (listener = undefined);
    },
    emit: (event) => listener?.(event),
  };
  const mux = createSessionMultiplexer({
    upstream,
    ...(store ? { store } : {}),
    ...(logger ? { logger } : {}),
  });
  const child = () => upstream.connection as FakeChild;
  const open = (capabilities: Record<string, unknown> = {}, protocolVersion = '2025-06-18') => {
    const opened = mux.openSession({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion, capabilities, clientInfo: { name: 'c', version: '1' } },
    });
    if (!opened.ok) throw new Error(opened.message);
    return opened;
  };
  return { mux, upstream, child, open };
}

class Reply implements ReplyChannel {
  messages: JsonRpcMessage[] = [];
  abandoned: JsonRpcId[] = [];
  constructor(private readonly canStream = true) {}
  deliver(message: JsonRpcMessage): boolean {
    if ('method' in message && !this.canStream) return false;
    this.messages.push(message);
    return true;
  }
  abandon(id: JsonRpcId): void {
    this.abandoned.push(id);
  }
}

class Stream implements ClientChannel {
  messages: JsonRpcMessage[] = [];
  deliver(message: JsonRpcMessage): boolean {
    this.messages.push(message);
    return true;
  }
}

function withStream(session: ClientSession): Stream {
  const stream = new Stream();
  session.stream = stream;
  return stream;
}

const call = (id: JsonRpcId, params: Record<string, unknown> = {}): JsonRpcRequest => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'echo', arguments: {}, ...params },
});

describe('initialize', () => {
  it('answers from the child handshake with a fresh session', () => {
    const { open } = setup();

    const { session, response } = open();

    expect(session.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(response).toEqual({
      jsonrpc: '2.0',
      id: 0,
      result: {
        protocolVersion: '2025-06-18',
        capabilities: CHILD_INIT.capabilities,
        serverInfo: CHILD_INIT.serverInfo,
        instructions: 'be nice',
      },
    });
  });

  it('negotiates the version: never newer than the child, an older known one kept', () => {
    expect(negotiateProtocolVersion('2025-11-25', '2025-06-18')).toBe('2025-06-18');
    expect(negotiateProtocolVersion('2025-03-26', '2025-06-18')).toBe('2025-03-26');
    expect(negotiateProtocolVersion('1999-01-01', '2025-06-18')).toBe('2025-06-18');
    expect(negotiateProtocolVersion(undefined, '2025-06-18')).toBe('2025-06-18');
  });

  it('knows the same protocol revisions as the SDK it was copied from', () => {
    expect([...SUPPORTED_PROTOCOL_VERSIONS].sort()).toEqual([...SDK_PROTOCOL_VERSIONS].sort());
  });

  it('is refused while the child is not running', () => {
    const { mux, upstream } = setup();
    upstream.connection = undefined;
    (upstream as { initializeResult: unknown }).initializeResult = undefined;

    const opened = mux.openSession({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {} });

    expect(opened).toMatchObject({ ok: false, code: 'upstream_unavailable' });
  });
});

describe('requests and answers', () => {
  it('gives each session unique child-side ids and routes the answers back', () => {
    const { mux, child, open } = setup();
    const a = open().session;
    const b = open().session;
    const replyA = new Reply();
    const replyB = new Reply();

    mux.fromClient(a, call(1), replyA);
    const childA = child().lastRequest().id;
    mux.fromClient(b, call(1), replyB);
    const childB = child().lastRequest().id;
    child().say({ jsonrpc: '2.0', id: childB, result: { from: 'b' } });
    child().say({ jsonrpc: '2.0', id: childA, result: { from: 'a' } });

    expect(childA).not.toBe(childB);
    expect(replyA.messages).toEqual([{ jsonrpc: '2.0', id: 1, result: { from: 'a' } }]);
    expect(replyB.messages).toEqual([{ jsonrpc: '2.0', id: 1, result: { from: 'b' } }]);
    expect(mux.inFlight).toBe(0);
  });

  it('refuses a request id already in flight in the same session', () => {
    const { mux, open } = setup();
    const { session } = open();
    const reply = new Reply();

    mux.fromClient(session, call('x'), new Reply());
    mux.fromClient(session, call('x'), reply);

    expect(reply.messages[0]).toMatchObject({ id: 'x', error: { code: -32600 } });
  });

  it('rewrites progress tokens and routes progress to the request, or else to the session stream', () => {
    const { mux, child, open } = setup();
    const { session } = open();
    const stream = withStream(session);
    const streaming = new Reply();
    const jsonOnly = new Reply(false);

    mux.fromClient(session, call(1, { _meta: { progressToken: 'tok' } }), streaming);
    const first = child().lastRequest();
    mux.fromClient(session, call(2, { _meta: { progressToken: 'tok2' } }), jsonOnly);
    const second = child().lastRequest();
    child().say({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: first.id, progress: 1 },
    });
    child().say({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: second.id, progress: 2 },
    });

    expect((first.params!._meta as { progressToken: unknown }).progressToken).toBe(first.id);
    expect(streaming.messages).toEqual([
      {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 'tok', progress: 1 },
      },
    ]);
    expect(stream.messages).toEqual([
      {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 'tok2', progress: 2 },
      },
    ]);
  });

  it('translates a cancellation to the child-side id and drops the late answer', () => {
    const { mux, child, open } = setup();
    const { session } = open();
    const reply = new Reply();
    mux.fromClient(session, call(7), reply);
    const childId = child().lastRequest().id;

    mux.fromClient(session, {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 7, reason: 'user' },
    });
    child().say({ jsonrpc: '2.0', id: childId, result: {} });

    expect(child().sent.at(-1)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: childId, reason: 'user' },
    });
    expect(reply.abandoned).toEqual([7]);
    expect(reply.messages).toEqual([]);
  });

  it('answers initialized notifications itself and forwards other notifications', () => {
    const { mux, child, open } = setup();
    const { session } = open();
    const before = child().sent.length;

    mux.fromClient(session, { jsonrpc: '2.0', method: 'notifications/initialized' });
    mux.fromClient(session, { jsonrpc: '2.0', method: 'notifications/roots/list_changed' });

    expect(child().sent.slice(before)).toEqual([
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
    ]);
  });
});

describe('requests from the child', () => {
  it('go to the most recent session that declared the capability, and the answer goes back', () => {
    const { mux, child, open } = setup();
    const sampler = open({ sampling: {} }).session;
    const samplerStream = withStream(sampler);
    const other = open().session;
    const otherStream = withStream(other);

    child().say({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: {} });
    mux.fromClient(sampler, { jsonrpc: '2.0', id: 'srv-1', result: { model: 'm' } });

    expect(samplerStream.messages).toHaveLength(1);
    expect(otherStream.messages).toHaveLength(0);
    expect(child().sent.at(-1)).toEqual({ jsonrpc: '2.0', id: 'srv-1', result: { model: 'm' } });
  });

  it('are answered by the agent when no session can take them', () => {
    const { child, open } = setup();
    const stream = withStream(open().session);

    child().say({ jsonrpc: '2.0', id: 5, method: 'roots/list' });
    child().say({ jsonrpc: '2.0', id: 6, method: 'ping' });

    // No roots capability: the agent says so; a ping needs none: the client answers.
    expect(child().sent.at(-1)).toMatchObject({ id: 5, error: { code: -32601 } });
    expect(stream.messages).toEqual([{ jsonrpc: '2.0', id: 6, method: 'ping' }]);
  });

  it('ping is answered by the agent while no session is connected', () => {
    const { child } = setup();

    child().say({ jsonrpc: '2.0', id: 7, method: 'ping' });

    expect(child().sent.at(-1)).toEqual({ jsonrpc: '2.0', id: 7, result: {} });
  });

  it('ignore an answer from a session that was not asked', () => {
    const { mux, child, open } = setup();
    const asked = open({ sampling: {} }).session;
    withStream(asked);
    const intruder = open({ sampling: {} }).session;
    child().say({ jsonrpc: '2.0', id: 'srv-2', method: 'sampling/createMessage', params: {} });
    const before = child().sent.length;

    // `asked` is older but the only one with a stream.
    mux.fromClient(intruder, { jsonrpc: '2.0', id: 'srv-2', result: {} });

    expect(child().sent.length).toBe(before);
  });
});

describe('notifications from the child', () => {
  it('fans list_changed out to every session stream', () => {
    const { child, open } = setup();
    const streams = [withStream(open().session), withStream(open().session)];

    child().say({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });

    for (const stream of streams) expect(stream.messages).toHaveLength(1);
  });

  it('sends resource updates to subscribers only, and unsubscribes the child after the last one', () => {
    const { mux, child, open } = setup();
    const a = open().session;
    const b = open().session;
    const streamA = withStream(a);
    const streamB = withStream(b);
    const sub = (id: number, method: string) => ({
      jsonrpc: '2.0' as const,
      id,
      method,
      params: { uri: 'file:///x' },
    });

    mux.fromClient(a, sub(1, 'resources/subscribe'), new Reply());
    child().say({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'file:///x' },
    });
    mux.fromClient(b, sub(1, 'resources/subscribe'), new Reply());
    const localAnswer = new Reply();
    mux.fromClient(a, sub(2, 'resources/unsubscribe'), localAnswer);
    const forwardedBefore = child().sent.filter(
      (m) => 'method' in m && m.method === 'resources/unsubscribe',
    ).length;
    mux.fromClient(b, sub(2, 'resources/unsubscribe'), new Reply());
    const forwardedAfter = child().sent.filter(
      (m) => 'method' in m && m.method === 'resources/unsubscribe',
    ).length;

    expect(streamA.messages).toHaveLength(1);
    expect(streamB.messages).toHaveLength(0);
    expect(localAnswer.messages).toEqual([{ jsonrpc: '2.0', id: 2, result: {} }]);
    expect([forwardedBefore, forwardedAfter]).toEqual([0, 1]);
  });

  it('logs the failed step when the child refuses the unsubscribe after the last session left', async () => {
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      warn: (fields: Record<string, unknown>, message: string) =>
        warnings.push({ fields, message }),
    } as unknown as Logger;
    const { mux, child, open } = setup(undefined, logger);
    const { session } = open();
    mux.fromClient(
      session,
      { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'file:///x' } },
      new Reply(),
    );
    const refusal = new Error('the child is gone');
    child().request = () => Promise.reject(refusal);

    mux.closeSession(session);

    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toEqual([
      {
        fields: { step: 'resources/unsubscribe', uri: 'file:///x', err: refusal },
        message: 'resources/unsubscribe at the child failed',
      },
    ]);
  });
});

describe('sessions kept across agent restarts', () => {
  const memoryStore = () => {
    let saved: PersistedSession[] = [];
    return {
      store: {
        load: () => structuredClone(saved),
        save: (sessions: PersistedSession[]) => void (saved = structuredClone(sessions)),
      } satisfies SessionStore,
      saved: () => saved,
    };
  };

  it('go on with the same id, version, capabilities and subscriptions under a new multiplexer', () => {
    const kept = memoryStore();
    const before = setup(kept.store);
    const session = before.open({ sampling: {} }, '2025-03-26').session;
    before.mux.fromClient(
      session,
      { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'file:///x' } },
      new Reply(),
    );
    expect(kept.saved()).toEqual([
      expect.objectContaining({ id: session.id, subscriptions: ['file:///x'] }),
    ]);

    // The agent died; a new one took the child over.
    const after = setup(kept.store);
    const restored = after.mux.getSession(session.id)!;
    expect(restored).toMatchObject({
      protocolVersion: '2025-03-26',
      clientCapabilities: { sampling: {} },
    });
    const stream = withStream(restored);
    after.child().say({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'file:///x' },
    });
    expect(stream.messages).toHaveLength(1);
    const reply = new Reply();
    after.mux.fromClient(restored, call(7), reply);
    const forwarded = after.child().lastRequest();
    after.child().say({ jsonrpc: '2.0', id: forwarded.id, result: { content: [] } });
    expect(reply.messages).toEqual([{ jsonrpc: '2.0', id: 7, result: { content: [] } }]);

    after.mux.closeSession(restored);
    expect(kept.saved()).toEqual([]);
  });

  it('are forgotten when the agent ends them all', () => {
    const kept = memoryStore();
    const { mux, open } = setup(kept.store);
    open();
    open();
    expect(kept.saved()).toHaveLength(2);
    mux.close('the agent is stopping');
    expect(kept.saved()).toEqual([]);
  });
});

describe('lifecycle', () => {
  it('fails requests in flight when the child exits, and binds the restarted child', () => {
    const { mux, upstream, child, open } = setup();
    const { session } = open();
    mux.fromClient(
      session,
      { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'u' } },
      new Reply(),
    );
    const reply = new Reply();
    mux.fromClient(session, call(2), reply);
    const old = child();

    old.close();
    upstream.connection = undefined;
    upstream.emit({
      type: 'exited',
      pid: 1,
      expected: false,
      uptimeMs: 1,
      code: 1,
      signal: null,
      reason: 'exited with code 1',
    });
    const fresh = new FakeChild();
    upstream.connection = fresh;
    upstream.emit({
      type: 'ready',
      pid: 2,
      adopted: false,
      handshakeMs: 1,
      connection: fresh,
      initializeResult: CHILD_INIT,
    });
    mux.fromClient(session, call(3), new Reply());

    expect(reply.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 2,
        error: { code: -32000, message: 'the MCP server exited with code 1' },
      },
    ]);
    // The new child is told of the subscriptions the old one had, then serves.
    expect(fresh.sent.map((m) => ('method' in m ? m.method : 'answer'))).toEqual([
      'resources/subscribe',
      'tools/call',
    ]);
  });

  it('closing a session cancels its requests at the child and refuses its id afterwards', () => {
    const { mux, child, open } = setup();
    const { session } = open();
    const reply = new Reply();
    mux.fromClient(session, call(1), reply);
    const childId = child().lastRequest().id;

    mux.closeSession(session);

    expect(child().sent.at(-1)).toMatchObject({
      method: 'notifications/cancelled',
      params: { requestId: childId },
    });
    expect(reply.abandoned).toEqual([1]);
    expect(mux.getSession(session.id)).toBeUndefined();
    expect(mux.sessionCount).toBe(0);
  });

  it('closing everything answers requests in flight with the reason', () => {
    const { mux, open } = setup();
    const { session } = open();
    const reply = new Reply();
    mux.fromClient(session, call(1), reply);

    mux.close('the MCP instance is shutting down');

    expect(reply.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32000, message: 'the MCP instance is shutting down' },
      },
    ]);
    expect(mux.sessionCount).toBe(0);
  });

  it('sweeps sessions idle with no stream and nothing in flight', () => {
    const { mux, open } = setup();
    const idle = open().session;
    const streaming = open().session;
    withStream(streaming);
    const busy = open().session;
    mux.fromClient(busy, call(1), new Reply());

    const swept = mux.sweepIdle(Date.now() + 60_000, 1_000);

    expect(swept).toBe(1);
    expect(mux.getSession(idle.id)).toBeUndefined();
    expect(mux.getSession(streaming.id)).toBeDefined();
    expect(mux.getSession(busy.id)).toBeDefined();
  });
});
