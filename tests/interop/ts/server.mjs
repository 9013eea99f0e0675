// The TypeScript MCP SDK (npm @modelcontextprotocol/sdk) as an authorization server and an MCP
// server, for mcp-client-auth's interop tests, on 127.0.0.1 only.
//
// One Express app: the SDK's mcpAuthRouter (RFC 8414 metadata, RFC 9728 metadata for /mcp,
// RFC 7591 registration, authorization, token, and RFC 7009 revocation where the provider
// revokes), and at /mcp a stateless MCP server of the SDK (McpServer + streamable HTTP, answers
// in JSON) behind the SDK's requireBearerAuth, which checks tokens through the provider:
// `mcp:tools` for every request, `mcp:tools mcp:write` for a tools/call of save_note (403
// insufficient_scope otherwise: the step-up).
//
// Environment:
//   TS_PROVIDER  demo = the SDK's DemoInMemoryAuthProvider as shipped (approves at once; no
//                       refresh tokens, no revocation, access tokens for an hour)
//                full = that provider completed the way a real one would be: access tokens
//                       for AT_TTL seconds, rotating refresh tokens, revocation of a grant
//   AT_TTL       full: access-token lifetime in seconds (default 300)
//   LISTEN_FD    a listening socket's file descriptor, inherited (bound by the test)
//   PORT         its port on 127.0.0.1
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';

import express from 'express';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { InvalidGrantError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { getOAuthProtectedResourceMetadataUrl, mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod/v4';

const env = process.env;
const KIND = env.TS_PROVIDER || 'full';
const TTL = Number(env.AT_TTL || 300);
const BASE = `http://127.0.0.1:${env.PORT}`;
const MCP_URL = new URL(`${BASE}/mcp`);
const BASE_SCOPE = 'mcp:tools';
const WRITE_SCOPE = 'mcp:write';

// The demo provider as shipped, and what it lacks added on top: expiry, refresh, revocation.
class FullProvider extends DemoInMemoryAuthProvider {
  constructor() {
    super((resource) => resource?.href === MCP_URL.href);
    this.refreshTokens = new Map();
  }

  #issue(clientId, scopes, resource) {
    const accessToken = randomUUID();
    const refreshToken = randomUUID();
    const grant = { clientId, scopes, resource, accessToken, refreshToken };
    this.tokens.set(accessToken, {
      token: accessToken, clientId, scopes, resource, expiresAt: Date.now() + TTL * 1000, type: 'access',
    });
    this.refreshTokens.set(refreshToken, grant);
    return {
      access_token: accessToken, token_type: 'bearer', expires_in: TTL, refresh_token: refreshToken, scope: scopes.join(' '),
    };
  }

  async exchangeAuthorizationCode(client, authorizationCode, codeVerifier) {
    const issued = await super.exchangeAuthorizationCode(client, authorizationCode, codeVerifier);
    const { clientId, scopes, resource } = this.tokens.get(issued.access_token);
    this.tokens.delete(issued.access_token);
    return this.#issue(clientId, scopes, resource);
  }

  async exchangeRefreshToken(client, refreshToken, scopes) {
    const grant = this.refreshTokens.get(refreshToken);
    if (!grant || grant.clientId !== client.client_id) throw new InvalidGrantError('unknown refresh token');
    const wanted = scopes?.length ? scopes : grant.scopes;
    if (!wanted.every((scope) => grant.scopes.includes(scope))) throw new InvalidGrantError('more scope than granted');
    this.#revokeGrant(grant);
    return this.#issue(grant.clientId, wanted, grant.resource);
  }

  // The demo throws a plain Error for an unknown or expired token, which requireBearerAuth
  // answers with 500; a real provider says invalid_token (401).
  async verifyAccessToken(token) {
    try {
      return await super.verifyAccessToken(token);
    } catch {
      throw new InvalidTokenError('unknown or expired token');
    }
  }

  async revokeToken(client, request) {
    const access = this.tokens.get(request.token);
    const grant = this.refreshTokens.get(request.token)
      ?? [...this.refreshTokens.values()].find((g) => g.accessToken === request.token);
    if (grant && grant.clientId === client.client_id) this.#revokeGrant(grant);
    else if (access && access.clientId === client.client_id) this.tokens.delete(request.token);
  }

  #revokeGrant(grant) {
    this.tokens.delete(grant.accessToken);
    this.refreshTokens.delete(grant.refreshToken);
  }
}

const provider = KIND === 'demo'
  ? new DemoInMemoryAuthProvider((resource) => resource?.href === MCP_URL.href)
  : new FullProvider();

function mcpServer() {
  const server = new McpServer({ name: `interop: TypeScript SDK (${KIND})`, version: '1.0.0' });
  server.registerTool('echo', { description: 'Return the text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('save_note', { description: 'Pretend to store a note (needs mcp:write).', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `saved: ${text}` }] }));
  return server;
}

const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(MCP_URL);
const bearer = (scopes) => requireBearerAuth({ verifier: provider, requiredScopes: scopes, resourceMetadataUrl });
const baseAuth = bearer([BASE_SCOPE]);
const writeAuth = bearer([BASE_SCOPE, WRITE_SCOPE]);
const needsWrite = (body) => [body].flat().some((m) => m?.method === 'tools/call' && m?.params?.name === 'save_note');

const app = express();
app.use(mcpAuthRouter({
  provider,
  issuerUrl: new URL(BASE),
  resourceServerUrl: MCP_URL,
  scopesSupported: [BASE_SCOPE, WRITE_SCOPE],
  resourceName: `interop: TypeScript SDK (${KIND})`,
  // The suite registers a client for each check: no rate limits in tests.
  authorizationOptions: { rateLimit: false },
  tokenOptions: { rateLimit: false },
  clientRegistrationOptions: { rateLimit: false },
  revocationOptions: { rateLimit: false },
}));
app.post('/mcp', express.json(), (req, res, next) => (needsWrite(req.body) ? writeAuth : baseAuth)(req, res, next),
  async (req, res) => {
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

const listening = http.createServer(app);
listening.listen({ fd: Number(env.LISTEN_FD) }, () => {
  console.log(JSON.stringify({ event: 'listening', issuer: BASE, provider: KIND, mcp: MCP_URL.href }));
});
