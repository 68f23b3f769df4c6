// A real OpenID provider (panva's oidc-provider) for claimcheck's examples
// and end-to-end tests: the OAuth 2.0 client-credentials grant with RFC 9068
// JWT access tokens (via RFC 8707 resource indicators) or opaque ones, OIDC
// discovery, a JWKS, token introspection (RFC 7662) and revocation (RFC
// 7009). Listens on 127.0.0.1:$PORT; prints "ready ISSUER" when it does.
//
//   PORT=9400 node server.mjs
//
// Clients (client_secret_basic or client_secret_post):
//   service-client-id / service-secret   scopes orders:read orders:write
//   some-other-client / other-secret     scopes orders:read
//   claimcheck / claimcheck-secret       no grants: introspects the others' tokens
// Resource "urn:orders-api" (the default) gives JWT access tokens with
// audience "orders-api"; resource "urn:orders-api:opaque" gives opaque ones
// for the same audience, which only introspection can check.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('set PORT to the port to listen on');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Fresh signing keys on every start: ES256 for access tokens, RS256 because
// OpenID Connect requires it for ID tokens.
function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`, alg, use: 'sig' };
}
const jwks = {
  keys: [
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  ],
};

const ordersAPI = 'urn:orders-api';
const ordersAPIOpaque = 'urn:orders-api:opaque';

const provider = new Provider(issuer, {
  jwks,
  scopes: ['openid', 'orders:read', 'orders:write'],
  clients: [
    {
      client_id: 'service-client-id',
      client_secret: 'service-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'orders:read orders:write',
    },
    {
      client_id: 'some-other-client',
      client_secret: 'other-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'orders:read',
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'claimcheck',
      client_secret: 'claimcheck-secret',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
    },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Only claimcheck may introspect tokens issued to other clients.
    introspection: {
      enabled: true,
      allowedPolicy: (ctx, client, token) => client.clientId === 'claimcheck' || client.clientId === token.clientId,
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => ordersAPI,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== ordersAPI && resource !== ordersAPIOpaque) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          audience: 'orders-api',
          scope: 'orders:read orders:write',
          accessTokenFormat: resource === ordersAPI ? 'jwt' : 'opaque',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
