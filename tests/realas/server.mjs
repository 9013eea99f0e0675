// Real OAuth 2.x authorization server for end-to-end tests of an MCP OAuth client.
// oidc-provider (panva) v9, in-memory adapter, listens on 127.0.0.1 only.
//
// Environment (all optional):
//   AS_PORT             port to listen on (default 9000; 0 = pick a free port)
//   AS_HOST             bind address (default 127.0.0.1)
//   MCP_RESOURCE        resource indicator(s) accepted, comma separated
//                       (default http://127.0.0.1:9100/mcp)
//   MCP_SCOPES          scopes the resource server knows (default "mcp:tools mcp:read")
//   AT_TTL              access token lifetime in seconds (default 5)
//   RT_TTL              refresh token lifetime in seconds (default 3600)
//   AT_FORMAT           jwt | opaque (default jwt)
//   INTERACTION_MODE    dev  = oidc-provider devInteractions (HTML login + consent forms,
//                              any login/password accepted, login value becomes "sub")
//                       auto = custom route that auto-logs-in AS_TEST_USER and auto-consents
//                       (default dev)
//   AS_TEST_USER        account id used by INTERACTION_MODE=auto (default test-user)
//   ALWAYS_ISSUE_RT     1 = issue a refresh token whenever the client registered the
//                       refresh_token grant, even without scope offline_access (default 1)
//   ROTATE_RT           1 = rotate refresh tokens on every use (default 1)
//   DEFAULT_RESOURCE    1 = when the client sends no `resource`, default to the first
//                       MCP_RESOURCE (default 0: strict, client must send resource)
//   RS_CLIENT_ID / RS_CLIENT_SECRET  static confidential client the resource server uses
//                       for token introspection (default mcp-rs / mcp-rs-secret)
//   STATIC_RS_SCOPES    1 = also list MCP_SCOPES in the AS `scopes` (needed so DCR accepts
//                       scope="mcp:tools" in client metadata) (default 1)
//   AS_PORT_FILE        if set, the actual port is written to this file once listening
//   AS_LOG_EVENTS       1 = log each grant (token request), registration and revocation as a
//                       JSON line on stdout (default 0)
//   DEVICE_FLOW         1 = RFC 8628 device authorization grant at /device/auth (default 1). In
//                       INTERACTION_MODE=auto the confirmation page is a form that submits itself
//                       (a browser), or that a plain HTTP client posts back (tests/conftest.py
//                       approve_device), then login and consent complete on their own
//   REVOCATION          1 = RFC 7009 revocation at /token/revocation (default 1)
//   CLIENT_CREDENTIALS  1 = the client_credentials grant (default 1)
//   REGISTRATION        1 = open RFC 7591 dynamic registration at /reg (default 1)
//   REGISTRATION_MANAGEMENT 1 = RFC 7592 read/update/delete of a registered client (default:
//                       as REGISTRATION; 0 is oidc-provider's own default)
//   ISSUER_PATH         a path for the issuer, e.g. /oidc (default none): the issuer becomes
//                       http://HOST:PORT/oidc and every endpoint is served under that path, as
//                       an oidc-provider mounted in a larger application is; its metadata is
//                       then at /oidc/.well-known/openid-configuration (and
//                       /oidc/.well-known/oauth-authorization-server), none at the root
//   EXTRA_CLIENTS       JSON array of pre-registered client metadata (default [])
//   OIDC_DEFAULTS       1 = oidc-provider's own defaults where the settings above depart from them
//                       (default 0): a refresh token only for `offline_access` granted with
//                       prompt=consent (OpenID Connect Core 1.0 section 11), tokens that end with
//                       the session unless `offline_access` was granted, no RFC 7592 registration
//                       management. ALWAYS_ISSUE_RT is then ignored.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const t0 = performance.now();
const env = process.env;
const HOST = env.AS_HOST || '127.0.0.1';
const PORT = Number(env.AS_PORT ?? 9000);
const RESOURCES = (env.MCP_RESOURCE || 'http://127.0.0.1:9100/mcp').split(',').map((s) => s.trim()).filter(Boolean);
const RS_SCOPES = env.MCP_SCOPES || 'mcp:tools mcp:read';
const AT_TTL = Number(env.AT_TTL || 5);
const RT_TTL = Number(env.RT_TTL || 3600);
const AT_FORMAT = env.AT_FORMAT || 'jwt';
const MODE = env.INTERACTION_MODE || 'dev';
const TEST_USER = env.AS_TEST_USER || 'test-user';
const ALWAYS_ISSUE_RT = (env.ALWAYS_ISSUE_RT ?? '1') === '1';
const ROTATE_RT = (env.ROTATE_RT ?? '1') === '1';
const DEFAULT_RESOURCE = env.DEFAULT_RESOURCE === '1';
const RS_CLIENT_ID = env.RS_CLIENT_ID || 'mcp-rs';
const RS_CLIENT_SECRET = env.RS_CLIENT_SECRET || 'mcp-rs-secret';
const flag = (name, dflt) => (env[name] ?? dflt) === '1';
const EXTRA_CLIENTS = JSON.parse(env.EXTRA_CLIENTS || '[]');
const OIDC_DEFAULTS = env.OIDC_DEFAULTS === '1';
const ISSUER_PATH = (env.ISSUER_PATH || '').replace(/\/+$/, '');
if (ISSUER_PATH && !/^\/[A-Za-z0-9._~/-]+$/.test(ISSUER_PATH)) {
  throw new Error(`ISSUER_PATH must be a path such as /oidc, not ${ISSUER_PATH}`);
}

// Fresh RS256 signing key per process (avoids the built-in dev keys warning).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
// kid differs per process so a resource server caching the JWKS re-fetches after an AS restart.
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `rs256-${crypto.randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' };

const configuration = {
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  clients: [
    // Resource-server-only client used for RFC 7662 introspection.
    {
      client_id: RS_CLIENT_ID,
      client_secret: RS_CLIENT_SECRET,
      response_types: [],
      grant_types: [],
      redirect_uris: [],
    },
    ...EXTRA_CLIENTS,
  ],
  // Client metadata `scope` sent at DCR must be a subset of these, so the resource
  // server's scopes are listed too (otherwise DCR with scope="mcp:tools" fails with
  // invalid_client_metadata). STATIC_RS_SCOPES=0 restores the oidc-provider default.
  scopes: ['openid', 'offline_access', ...((env.STATIC_RS_SCOPES ?? '1') === '1' ? RS_SCOPES.split(' ') : [])],
  // Accept arbitrary subjects, no real user store.
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  pkce: { required: () => true }, // PKCE (S256 only in oidc-provider) for every client
  features: {
    devInteractions: { enabled: MODE === 'dev' },
    registration: { enabled: flag('REGISTRATION', '1'), initialAccessToken: false }, // open RFC 7591 DCR
    // RFC 7592 read/update/delete (oidc-provider's own default: off)
    registrationManagement: {
      enabled: flag('REGISTRATION_MANAGEMENT', env.REGISTRATION ?? '1') && !OIDC_DEFAULTS,
    },
    introspection: { enabled: true },
    revocation: { enabled: flag('REVOCATION', '1') },
    clientCredentials: { enabled: flag('CLIENT_CREDENTIALS', '1') },
    deviceFlow: {
      enabled: flag('DEVICE_FLOW', '1'),
      // auto mode: the confirmation form submits itself in a browser; a plain HTTP client posts
      // the form's fields back (tests/conftest.py approve_device).
      ...(MODE === 'auto' ? {
        async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
          ctx.body = `<!DOCTYPE html><html><head><title>Confirm device</title></head><body>
            <p>Device code <code>${userCode}</code></p>${form}
            <button type="submit" form="op.deviceConfirmForm">Continue</button>
            <script>document.getElementById('op.deviceConfirmForm').submit()</script></body></html>`;
        },
      } : {}),
    },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf.length === 1 ? oneOf[0] : oneOf;
        return DEFAULT_RESOURCE ? RESOURCES[0] : undefined;
      },
      // Use the granted resource at the token endpoint even if `openid` was requested and
      // the client did not repeat `resource` there.
      async useGrantedResource() { return true; },
      async getResourceServerInfo(ctx, resourceIndicator, client) {
        if (!RESOURCES.includes(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        }
        return {
          scope: RS_SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: AT_TTL,
          accessTokenFormat: AT_FORMAT,
          ...(AT_FORMAT === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
  ...(OIDC_DEFAULTS ? {} : {
    async issueRefreshToken(ctx, client, code) {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      return ALWAYS_ISSUE_RT || code.scopes.has('offline_access');
    },
    expiresWithSession: async () => false,
  }),
  rotateRefreshToken: () => ROTATE_RT,
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || AT_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: () => RT_TTL,
  },
  // OAuth 2.1 style: only the authorization code flow.
  responseTypes: ['code'],
  // Only override the interaction URL in auto mode (devInteractions sets its own).
  ...(MODE === 'auto' ? { interactions: { url: (ctx, interaction) => `${ISSUER_PATH}/interaction/${interaction.uid}` } } : {}),
};

// Without ISSUER_PATH the issuer has no path, so RFC 8414 /.well-known/oauth-authorization-server
// and /.well-known/openid-configuration are both served at the root. With it, oidc-provider is
// mounted below the path (as Express mounts it: req.url without the path, req.originalUrl with
// it), discovery documents included, and nothing is served outside it.
let port = PORT;
const server = http.createServer();
await new Promise((resolve) => server.listen(PORT, HOST, resolve));
port = server.address().port;
const issuer = `http://${HOST}:${port}${ISSUER_PATH}`;
const provider = new Provider(issuer, configuration);

// The built-in HTML pages (devInteractions, error pages) @import Google Fonts; strip that so a
// real browser rendering them makes no request outside 127.0.0.1.
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g, '');
  }
});

// Quiet but useful: log server errors only.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// AS_LOG_EVENTS=1: one JSON line per token-endpoint grant and registration on stdout, so a test
// can count refreshes (e.g. N processes racing on one expired token must make exactly one).
if (env.AS_LOG_EVENTS === '1') {
  const log = (event, ctx, extra = {}) => console.log(JSON.stringify({
    event, grant_type: ctx.oidc?.params?.grant_type, client_id: ctx.oidc?.client?.clientId, ...extra,
  }));
  provider.on('grant.success', (ctx) => log('grant.success', ctx));
  provider.on('grant.error', (ctx, err) => log('grant.error', ctx, { error: err.error }));
  provider.on('registration_create.success', (ctx, client) => log('registration', ctx, { client_id: client.clientId }));
  provider.on('revocation.success', (ctx) => log('revocation.success', ctx));
}

async function autoInteraction(req, res) {
  // INTERACTION_MODE=auto: complete login/consent without any UI.
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session, grantId } = details;
    let result;
    if (prompt.name === 'login') {
      result = { login: { accountId: TEST_USER } };
    } else if (prompt.name === 'consent') {
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result = { consent: { grantId: await grant.save() } };
    } else {
      res.writeHead(501).end(`prompt ${prompt.name} not implemented`);
      return;
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  } catch (err) {
    console.error('interaction error', err);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(String(err));
  }
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (ISSUER_PATH) {
    // mounted under the issuer's path: oidc-provider sees the rest of the URL, and learns the
    // mount point from originalUrl (as under express or koa-mount); nothing outside the path
    const path = req.url.split('?')[0];
    if (path !== ISSUER_PATH && !path.startsWith(`${ISSUER_PATH}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(ISSUER_PATH.length) || '/';
  }
  if (MODE === 'auto' && req.method === 'GET' && /^\/interaction\/[^/]+$/.test(req.url.split('?')[0])) {
    autoInteraction(req, res);
    return;
  }
  callback(req, res);
});

if (env.AS_PORT_FILE) fs.writeFileSync(env.AS_PORT_FILE, String(port));
console.log(JSON.stringify({
  event: 'listening',
  issuer,
  interaction_mode: MODE,
  resources: RESOURCES,
  access_token_ttl: AT_TTL,
  access_token_format: AT_FORMAT,
  startup_ms: Math.round(performance.now() - t0),
}));
