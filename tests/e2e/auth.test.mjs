// JWT bearer auth (HS256, RS256, ES256 against a JWKS file, reloaded on SIGHUP) and CORS (preflights answered at the
// edge, CORS headers on simple requests and on errors), over HTTP/1.1 and HTTP/2. API keys and throttles are in
// gateway.test.mjs.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertJsonError,
  h1,
  h2,
  json,
  killAll,
  makeCerts,
  poll,
  runCli,
  sleep,
  startEdge,
  startOrigin,
  tempDir,
} from './lib.mjs';

after(killAll);

/* ------------------------------------------------------------------------------------------------------------------ */
/* tokens and keys                                                                                                    */

const b64u = (v) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

// A compact JWS: alg HS256 (key: the secret), RS256 / ES256 (key: a private KeyObject), anything else (e.g. "none"):
// an empty signature. header is merged over {alg, typ}; a member set to undefined is left out.
function makeJwt(alg, key, claims, header = {}) {
  const input = `${b64u({ alg, typ: 'JWT', ...header })}.${b64u(claims)}`;
  let sig = Buffer.alloc(0);
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(input).digest();
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

// Keys: { kid, alg, signKey (what makeJwt takes), jwk (the public JWK for the JWKS), publicKey }.
function rsaKey(kid, modulusLength = 2048) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength });
  return { kid, alg: 'RS256', signKey: privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

function ecKey(kid, namedCurve = 'P-256') {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve });
  return { kid, alg: 'ES256', signKey: privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256' } };
}

function octKey(kid) {
  const secret = crypto.randomBytes(32);
  return { kid, alg: 'HS256', signKey: secret, jwk: { kty: 'oct', k: b64u(secret), kid } };
}

// A token signed with k, whose header names k's kid (unless header overrides it).
const sign = (k, claims, header = {}) => makeJwt(k.alg, k.signKey, claims, { kid: k.kid, ...header });

function writeJwks(file, keys) {
  fs.writeFileSync(file, JSON.stringify({ keys: keys.map((k) => k.jwk || k) }));
}

const ISSUER = 'https://issuer.test';
// Claims that the /jwt/ route accepts, valid for 5 minutes.
const claims = (extra = {}) => ({ iss: ISSUER, aud: 'api', sub: 'user-1', iat: nowS(), exp: nowS() + 300, ...extra });
const bearer = (token) => ({ authorization: `Bearer ${token}` });

// The signature's bytes with one bit flipped (re-encoded, so the token stays well-formed base64url).
function flipSignature(token) {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[Math.floor(sig.length / 2)] ^= 0x01;
  return `${h}.${p}.${b64u(sig)}`;
}

// Other claims under the original signature.
function swapPayload(token, payload) {
  const [h, , s] = token.split('.');
  return `${h}.${b64u(payload)}.${s}`;
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* assertions                                                                                                         */

// A header's value as one string (HTTP/2 gives repeated fields as an array).
const hdr = (res, name) => (res.headers[name] === undefined ? undefined : [].concat(res.headers[name]).join(', '));

// A comma-separated header as a list of lower-cased items.
const items = (res, name) =>
  (hdr(res, name) || '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

// Access-Control-Allow-Methods lists every method of yes and none of no.
function assertMethods(res, yes, no) {
  const got = items(res, 'access-control-allow-methods');
  for (const m of yes) assert.ok(got.includes(m), `${m} not in Access-Control-Allow-Methods: ${got}`);
  for (const m of no) assert.ok(!got.includes(m), `${m} in Access-Control-Allow-Methods: ${got}`);
}

const corsHeaders = (res) => Object.keys(res.headers).filter((k) => k.startsWith('access-control-'));

function assertNoCors(res, what) {
  assert.deepEqual(corsHeaders(res), [], `${what}: unexpected CORS headers ${JSON.stringify(res.headers)}`);
}

// 401 with the RFC 6750 challenge for a token that was presented but refused; description: a RegExp it must match.
function assertInvalidToken(res, description, what) {
  const j = assertJsonError(res, 401, what);
  const www = hdr(res, 'www-authenticate') || '';
  assert.match(www, /^Bearer realm="edgeproxy", error="invalid_token", error_description="[^"]+"$/, `${what}: WWW-Authenticate ${www}`);
  assert.match(www.match(/error_description="([^"]+)"/)[1], description, `${what}: WWW-Authenticate ${www}`);
  return j;
}

// Runs fn and asserts that the origin got no request meanwhile.
async function withoutOrigin(origin, fn, what = '') {
  const before = origin.requests.length;
  const r = await fn();
  assert.equal(origin.requests.length, before, `${what}: the origin was contacted (${origin.requests.at(-1)?.url})`);
  return r;
}

// Runs fn and asserts that the origin got exactly one request meanwhile, for path p.
async function throughOrigin(origin, p, fn, what = '') {
  const before = origin.requests.length;
  const r = await fn();
  assert.equal(origin.requests.length, before + 1, `${what}: origin requests (status ${r.status}, ${r.body.toString().slice(0, 200)})`);
  assert.equal(origin.requests.at(-1).url, p, what);
  return r;
}

// 1-based line of the first line of text that contains needle.
function lineOf(text, needle) {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `"${needle}" not in the conf`);
  return i + 1;
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* one edge for the JWT and CORS behaviours                                                                           */

const APP = 'https://app.test';
const API_KEY = 'auth-test-api-key-0001';

describe('auth', () => {
  let origin;
  let edge;
  let port; // plain HTTP/1.1
  let tport; // TLS (HTTP/2)
  const rsa = rsaKey('rsa-1');
  const ec = ecKey('ec-1');
  const hs = octKey('hs-1');
  const stranger = rsaKey('rsa-1'); // same kid, another key: not in the JWKS

  before(async () => {
    const certs = makeCerts();
    const c = certs.certs.localhost;
    origin = await startOrigin();
    const o = origin.url;
    const dir = tempDir('ep-auth-');
    writeJwks(path.join(dir, 'jwks.json'), [rsa, ec, hs]);
    edge = await startEdge(
      `threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }
keys:
  - { name: both-key, sha256: ${crypto.createHash('sha256').update(API_KEY).digest('hex')} }
hosts:
  "*":
    routes:
      - path: /jwt/
        origin: { url: "${o}" }
        auth:
          jwt:
            jwks: jwks.json
            issuer: ${ISSUER}
            audience: [api, other]
            leeway: 30s
      - path: /strict/
        origin: { url: "${o}" }
        auth: { jwt: { jwks: jwks.json, leeway: 5s } }
      - path: /exact/
        origin: { url: "${o}" }
        auth: { jwt: { jwks: jwks.json, leeway: 0s } }
      - path: /rs-only/
        origin: { url: "${o}" }
        auth: { jwt: { jwks: jwks.json, algorithms: [RS256] } }
      - path: /both/
        origin: { url: "${o}" }
        auth: { api_key: true, jwt: { jwks: jwks.json } }
      - path: /cors/
        methods: [GET, POST, PUT]
        origin: { url: "${o}" }
        cors:
          origins: ["https://app.test", "https://other.test:8443"]
          methods: [GET, POST, PUT]
          headers: [content-type, x-custom]
          expose_headers: [x-request-id, X-Origin]
          max_age: 10m
      - path: /cred/
        origin: { url: "${o}" }
        cors: { origins: ["https://app.test"], credentials: true }
      - path: /star/
        origin: { url: "${o}" }
        cors: { origins: "*", headers: "*" }
      - path: /cors-jwt/
        origin: { url: "${o}" }
        auth: { jwt: { jwks: jwks.json } }
        cors: { origins: ["https://app.test"], headers: [authorization, content-type], expose_headers: [www-authenticate] }
      - path: /cached/
        origin: { url: "${o}" }
        cache: { default_ttl: 60s }
        cors: { origins: ["https://app.test"] }
`,
      { dir },
    );
    [port, tport] = edge.ports;
  });

  after(async () => {
    if (edge) await edge.stopClean();
    if (origin) await origin.close();
  });

  const get = (p, headers = {}, method = 'GET') => h1({ port, path: p, method, headers });
  const preflight = (p, { from = APP, method = 'POST', headers } = {}) =>
    h1({
      port,
      path: p,
      method: 'OPTIONS',
      headers: {
        origin: from,
        'access-control-request-method': method,
        ...(headers !== undefined ? { 'access-control-request-headers': headers } : {}),
      },
    });

  /* ---- JWT ---- */

  describe('jwt', () => {
    test('no Authorization header: 401 with WWW-Authenticate: Bearer realm="edgeproxy", origin not contacted', async () => {
      for (const [what, headers] of [
        ['no header', {}],
        ['Basic credentials', { authorization: 'Basic dXNlcjpwYXNz' }],
        ['"Bearer" alone', { authorization: 'Bearer' }],
      ]) {
        const r = await withoutOrigin(origin, () => get('/jwt/x', headers), what);
        assertJsonError(r, 401, what);
        assert.equal(hdr(r, 'www-authenticate'), 'Bearer realm="edgeproxy"', what);
      }
      const r2 = await withoutOrigin(origin, () => h2({ port: tport, path: '/jwt/x' }), 'h2');
      assertJsonError(r2, 401, 'h2');
      assert.equal(hdr(r2, 'www-authenticate'), 'Bearer realm="edgeproxy"', 'h2');
    });

    test('a valid HS256, RS256 and ES256 token passes to the origin', async () => {
      for (const k of [hs, rsa, ec]) {
        const r = await throughOrigin(origin, `/jwt/ok-${k.alg}`, () => get(`/jwt/ok-${k.alg}`, bearer(sign(k, claims()))), k.alg);
        assert.equal(r.status, 200, `${k.alg}: ${r.body}`);
        assert.equal(json(r).url, `/jwt/ok-${k.alg}`);
      }
    });

    test('a token without kid passes with a key of its algorithm; "bearer" is case-insensitive; over HTTP/2 too', async () => {
      const noKid = sign(ec, claims(), { kid: undefined });
      const r = await throughOrigin(origin, '/jwt/nokid', () => get('/jwt/nokid', bearer(noKid)), 'no kid');
      assert.equal(r.status, 200);
      const lc = await throughOrigin(origin, '/jwt/lc', () => get('/jwt/lc', { authorization: `bearer ${sign(rsa, claims())}` }), 'lower-case scheme');
      assert.equal(lc.status, 200);
      const r2 = await throughOrigin(origin, '/jwt/h2', () => h2({ port: tport, path: '/jwt/h2', headers: bearer(sign(rsa, claims())) }), 'h2');
      assert.equal(r2.status, 200);
      assert.equal(json(r2).url, '/jwt/h2');
    });

    test('aud may be a list holding one accepted audience', async () => {
      const r = await throughOrigin(origin, '/jwt/aud', () => get('/jwt/aud', bearer(sign(rsa, claims({ aud: ['elsewhere', 'other'] })))));
      assert.equal(r.status, 200);
    });

    test('within the leeway (30s): exp 10 s ago and nbf 10 s ahead pass', async () => {
      const r = await throughOrigin(origin, '/jwt/leeway-exp', () => get('/jwt/leeway-exp', bearer(sign(rsa, claims({ exp: nowS() - 10 })))));
      assert.equal(r.status, 200, 'exp 10 s ago');
      const n = await throughOrigin(origin, '/jwt/leeway-nbf', () => get('/jwt/leeway-nbf', bearer(sign(rsa, claims({ nbf: nowS() + 10 })))));
      assert.equal(n.status, 200, 'nbf 10 s ahead');
    });

    test('the configured leeway is the one applied: exp 20 s ago passes with 30s and fails with 5s', async () => {
      const token = sign(ec, claims({ exp: nowS() - 20 }));
      const ok = await throughOrigin(origin, '/jwt/l20', () => get('/jwt/l20', bearer(token)));
      assert.equal(ok.status, 200);
      const r = await withoutOrigin(origin, () => get('/strict/l20', bearer(token)));
      assertInvalidToken(r, /expired/, 'leeway 5s');
    });

    // RFC 7519 4.1.4: exp is the time "on or after which the JWT MUST NOT be accepted"; nbf (4.1.5) the time on or after
    // which it may be. With leeway 0s a token whose exp is the current second is expired.
    test('leeway 0s: exp equal to now is refused, nbf equal to now passes (RFC 7519 4.1.4, 4.1.5)', async () => {
      const ok = await throughOrigin(origin, '/exact/ahead', () => get('/exact/ahead', bearer(sign(rsa, claims({ exp: nowS() + 30 })))));
      assert.equal(ok.status, 200, 'exp 30 s ahead');
      // just after a second starts, so that the edge sees the same second as the token's exp
      await sleep(1005 - (Date.now() % 1000));
      const t = nowS();
      const nbf = await throughOrigin(origin, '/exact/nbf', () => get('/exact/nbf', bearer(sign(rsa, claims({ nbf: t, exp: t + 30 })))));
      assert.equal(nbf.status, 200, 'nbf equal to now');
      await sleep(1005 - (Date.now() % 1000));
      const r = await withoutOrigin(origin, () => get('/exact/exp', bearer(sign(rsa, claims({ exp: nowS() })))), 'exp equal to now');
      assertInvalidToken(r, /expired/, 'exp equal to now (leeway 0s)');
    });

    test('300 verifications at once on two threads, all algorithms, a quarter forged: each gets its own answer', async () => {
      const cases = [];
      for (let i = 0; i < 300; ++i) {
        const token = sign([hs, rsa, ec][i % 3], claims({ jti: `j${i}` }));
        cases.push({ p: `/jwt/par-${i}`, token: i % 4 === 0 ? flipSignature(token) : token, want: i % 4 === 0 ? 401 : 200 });
      }
      const before = origin.requests.length;
      const res = await Promise.all(cases.map((c) => get(c.p, bearer(c.token))));
      res.forEach((r, i) => assert.equal(r.status, cases[i].want, `${cases[i].p}: ${r.body.toString().slice(0, 200)}`));
      const reached = origin.requests.slice(before).map((r) => r.url).sort();
      assert.deepEqual(reached, cases.filter((c) => c.want === 200).map((c) => c.p).sort());
    });

    // [what, token (a function, so that times are taken when the test runs), path, error_description]
    const failures = [
      ['expired beyond the leeway', () => sign(rsa, claims({ exp: nowS() - 120 })), '/jwt/', /^the token has expired$/],
      ['not yet valid beyond the leeway', () => sign(rsa, claims({ nbf: nowS() + 120 })), '/jwt/', /^the token is not valid yet$/],
      ['wrong issuer', () => sign(rsa, claims({ iss: 'https://evil.test' })), '/jwt/', /issuer/],
      ['no issuer', () => sign(rsa, claims({ iss: undefined })), '/jwt/', /issuer/],
      ['wrong audience', () => sign(rsa, claims({ aud: 'someone-else' })), '/jwt/', /audience/],
      ['wrong audiences (a list)', () => sign(rsa, claims({ aud: ['x', 'y'] })), '/jwt/', /audience/],
      ['no audience', () => sign(ec, claims({ aud: undefined })), '/jwt/', /audience/],
      ['RS256 signature with a byte changed', () => flipSignature(sign(rsa, claims())), '/jwt/', /signature/],
      ['ES256 signature with a byte changed', () => flipSignature(sign(ec, claims())), '/jwt/', /signature/],
      ['HS256 signature with a byte changed', () => flipSignature(sign(hs, claims())), '/jwt/', /signature/],
      ['claims changed under a valid signature', () => swapPayload(sign(rsa, claims()), claims({ sub: 'admin' })), '/jwt/', /signature/],
      ['signed by another key with the same kid', () => sign(stranger, claims()), '/jwt/', /signature/],
      ['ES256 with a DER signature', () => derEs256(claims()), '/jwt/', /signature/],
      ['alg none, empty signature', () => makeJwt('none', null, claims()), '/jwt/', /algorithm/],
      ['alg none with a kid', () => makeJwt('none', null, claims(), { kid: 'rsa-1' }), '/jwt/', /algorithm/],
      ['alg "rs256" (case matters)', () => makeJwt('RS256', rsa.signKey, claims(), { alg: 'rs256', kid: 'rsa-1' }), '/jwt/', /algorithm/],
      ['alg RS384', () => makeJwt('RS256', rsa.signKey, claims(), { alg: 'RS384', kid: 'rsa-1' }), '/jwt/', /algorithm/],
      [
        'HS/RS confusion: HS256 keyed with the RSA public key PEM, kid of the RSA key',
        () => makeJwt('HS256', rsa.publicKey.export({ type: 'spki', format: 'pem' }), claims(), { kid: 'rsa-1' }),
        '/jwt/',
        /algorithm/,
      ],
      [
        'HS/RS confusion: HS256 keyed with the PKCS#1 PEM, kid of the RSA key',
        () => makeJwt('HS256', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }), claims(), { kid: 'rsa-1' }),
        '/jwt/',
        /algorithm/,
      ],
      [
        'HS/RS confusion: HS256 keyed with the modulus bytes, kid of the RSA key',
        () => makeJwt('HS256', Buffer.from(rsa.jwk.n, 'base64url'), claims(), { kid: 'rsa-1' }),
        '/jwt/',
        /algorithm/,
      ],
      [
        'HS/RS confusion without kid',
        () => makeJwt('HS256', rsa.publicKey.export({ type: 'spki', format: 'pem' }), claims()),
        '/jwt/',
        /./,
      ],
      ['ES256 token with the kid of the RSA key', () => makeJwt('ES256', ec.signKey, claims(), { kid: 'rsa-1' }), '/jwt/', /algorithm/],
      ['an alg not in `algorithms` (ES256 on RS256 only)', () => sign(ec, claims()), '/rs-only/', /algorithm/],
      ['an alg not in `algorithms` (HS256 on RS256 only)', () => sign(hs, claims()), '/rs-only/', /algorithm/],
      ['unknown kid', () => sign(rsa, claims(), { kid: 'nobody' }), '/jwt/', /^no key matches the token$/],
      ['malformed: one part', () => 'abcdef', '/jwt/', /malformed/],
      ['malformed: two parts', () => sign(rsa, claims()).split('.').slice(0, 2).join('.'), '/jwt/', /malformed/],
      ['malformed: four parts', () => `${sign(rsa, claims())}.AAAA`, '/jwt/', /malformed/],
      ['malformed: garbage base64', () => '!!!!.####.$$$$', '/jwt/', /malformed/],
      ['malformed: padded base64', () => sign(rsa, claims()).replace('.', '==.'), '/jwt/', /malformed/],
      ['malformed: header not JSON', () => `${b64u('{"alg":')}.${b64u(claims())}.${b64u('x')}`, '/jwt/', /malformed/],
      ['malformed: empty parts', () => '..', '/jwt/', /malformed/],
    ];

    // ES256 signed with the default (DER) encoding: RFC 7518 3.4 wants raw r || s.
    function derEs256(c) {
      const input = `${b64u({ alg: 'ES256', typ: 'JWT', kid: 'ec-1' })}.${b64u(c)}`;
      return `${input}.${b64u(crypto.sign('sha256', Buffer.from(input), ec.signKey))}`;
    }

    for (const [what, token, base, description] of failures) {
      test(`refused, origin not contacted: ${what}`, async () => {
        const p = `${base}refused`;
        const r = await withoutOrigin(origin, () => get(p, bearer(token())), what);
        assertInvalidToken(r, description, what);
      });
    }

    test('the same refusals over HTTP/2', async () => {
      for (const [what, token] of [
        ['expired', sign(rsa, claims({ exp: nowS() - 120 }))],
        ['alg none', makeJwt('none', null, claims())],
        ['bad signature', flipSignature(sign(ec, claims()))],
      ]) {
        const r = await withoutOrigin(origin, () => h2({ port: tport, path: '/jwt/h2-refused', headers: bearer(token) }), what);
        assertInvalidToken(r, /./, `h2 ${what}`);
      }
    });

    test('an alg in `algorithms` passes on the restricted route (RS256 on RS256 only)', async () => {
      const r = await throughOrigin(origin, '/rs-only/ok', () => get('/rs-only/ok', bearer(sign(rsa, claims()))));
      assert.equal(r.status, 200);
    });

    test('api_key and jwt together: the key first (403), then the token (401), both pass', async () => {
      const token = sign(rsa, claims());
      const noKey = await withoutOrigin(origin, () => get('/both/x', bearer(token)), 'token, no key');
      assertJsonError(noKey, 403, 'token, no key');
      const badKey = await withoutOrigin(origin, () => get('/both/x', { 'x-api-key': 'nope', ...bearer(token) }), 'unknown key');
      assertJsonError(badKey, 403, 'unknown key');
      const noToken = await withoutOrigin(origin, () => get('/both/x', { 'x-api-key': API_KEY }), 'key, no token');
      assertJsonError(noToken, 401, 'key, no token');
      assert.equal(hdr(noToken, 'www-authenticate'), 'Bearer realm="edgeproxy"');
      const badToken = await withoutOrigin(origin, () => get('/both/x', { 'x-api-key': API_KEY, ...bearer(flipSignature(token)) }), 'key, bad token');
      assertInvalidToken(badToken, /signature/, 'key, bad token');
      const ok = await throughOrigin(origin, '/both/ok', () => get('/both/ok', { 'x-api-key': API_KEY, ...bearer(token) }), 'both');
      assert.equal(ok.status, 200);
    });
  });

  /* ---- CORS ---- */

  describe('cors', () => {
    test('preflight: 204 at the edge with the allowed origin, methods, headers, max age and Vary: Origin', async () => {
      const r = await withoutOrigin(origin, () => preflight('/cors/pre', { headers: 'content-type' }));
      assert.equal(r.status, 204, r.body.toString());
      assert.equal(r.body.length, 0);
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      assertMethods(r, ['get', 'post', 'put'], ['delete', 'patch', 'options']);
      const allowHeaders = items(r, 'access-control-allow-headers');
      assert.ok(allowHeaders.includes('content-type'), `allow-headers ${allowHeaders}`);
      assert.ok(allowHeaders.includes('x-custom'), `allow-headers ${allowHeaders}`);
      assert.equal(hdr(r, 'access-control-max-age'), '600');
      assert.ok(items(r, 'vary').includes('origin'), `vary ${hdr(r, 'vary')}`);
      assert.equal(hdr(r, 'access-control-allow-credentials'), undefined);
    });

    test('preflight: request headers match case-insensitively, in any order; a second origin with its port', async () => {
      const r = await withoutOrigin(origin, () => preflight('/cors/pre', { method: 'PUT', headers: 'X-Custom,Content-Type' }));
      assert.equal(r.status, 204);
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      const o = await withoutOrigin(origin, () => preflight('/cors/pre', { from: 'https://other.test:8443', method: 'GET' }));
      assert.equal(o.status, 204);
      assert.equal(hdr(o, 'access-control-allow-origin'), 'https://other.test:8443');
    });

    test('preflight works though the route\'s methods exclude OPTIONS; OPTIONS without Access-Control-Request-Method is no preflight (405)', async () => {
      const r = await withoutOrigin(origin, () => preflight('/cors/methods', { method: 'GET' }));
      assert.equal(r.status, 204);
      const plain = await withoutOrigin(origin, () => h1({ port, path: '/cors/methods', method: 'OPTIONS', headers: { origin: APP } }));
      assertJsonError(plain, 405, 'OPTIONS without Access-Control-Request-Method');
    });

    test('preflight refused (403 JSON, no Access-Control-* headers, origin not contacted): origin, method or header not allowed', async () => {
      for (const [what, opts] of [
        ['unknown origin', { from: 'https://evil.test' }],
        ['allowed host, other scheme', { from: 'http://app.test' }],
        ['allowed origin as a prefix', { from: 'https://app.test.evil.test' }],
        ['allowed host, other port', { from: 'https://other.test' }],
        ['"null" origin', { from: 'null' }],
        ['method not allowed', { method: 'DELETE' }],
        ['unknown method', { method: 'PROPFIND' }],
        ['header not allowed', { headers: 'x-evil' }],
        ['one header of the list not allowed', { headers: 'content-type, x-evil' }],
      ]) {
        const r = await withoutOrigin(origin, () => preflight('/cors/refused', opts), what);
        assertJsonError(r, 403, what);
        assertNoCors(r, what);
      }
    });

    test('simple request from an allowed origin: the origin\'s response plus Allow-Origin, Expose-Headers and Vary: Origin', async () => {
      const r = await throughOrigin(origin, '/cors/simple', () => get('/cors/simple', { origin: APP }));
      assert.equal(r.status, 200);
      assert.equal(json(r).url, '/cors/simple');
      assert.equal(r.headers['x-origin'], 'yes');
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      assert.deepEqual(items(r, 'access-control-expose-headers'), ['x-request-id', 'x-origin']);
      assert.ok(items(r, 'vary').includes('origin'), `vary ${hdr(r, 'vary')}`);
      assert.equal(hdr(r, 'access-control-allow-credentials'), undefined);
      const post = await throughOrigin(origin, '/cors/post', () =>
        h1({ port, path: '/cors/post', method: 'POST', headers: { origin: APP, 'content-type': 'text/plain' }, body: 'hi' }),
      );
      assert.equal(post.status, 200);
      assert.equal(json(post).bodyLength, 2);
      assert.equal(hdr(post, 'access-control-allow-origin'), APP);
    });

    test('simple request from a disallowed origin, or without Origin: the response, but no Access-Control-* headers', async () => {
      const evil = await throughOrigin(origin, '/cors/evil', () => get('/cors/evil', { origin: 'https://evil.test' }));
      assert.equal(evil.status, 200);
      assert.equal(json(evil).url, '/cors/evil');
      assertNoCors(evil, 'disallowed origin');
      assert.ok(items(evil, 'vary').includes('origin'), `vary ${hdr(evil, 'vary')}`);
      const none = await throughOrigin(origin, '/cors/none', () => get('/cors/none'));
      assert.equal(none.status, 200);
      assertNoCors(none, 'no Origin');
    });

    test('credentials: true adds Access-Control-Allow-Credentials and echoes the origin', async () => {
      const r = await throughOrigin(origin, '/cred/x', () => get('/cred/x', { origin: APP }));
      assert.equal(r.status, 200);
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      assert.equal(hdr(r, 'access-control-allow-credentials'), 'true');
      assert.ok(items(r, 'vary').includes('origin'));
      const p = await withoutOrigin(origin, () => preflight('/cred/x', { method: 'GET' }));
      assert.equal(p.status, 204);
      assert.equal(hdr(p, 'access-control-allow-origin'), APP);
      assert.equal(hdr(p, 'access-control-allow-credentials'), 'true');
      assert.equal(hdr(p, 'access-control-max-age'), undefined, 'no max_age configured');
      const evil = await throughOrigin(origin, '/cred/evil', () => get('/cred/evil', { origin: 'https://evil.test' }));
      assertNoCors(evil, 'credentials route, disallowed origin');
    });

    test('origins "*": Access-Control-Allow-Origin: * for any origin; headers "*" allows the headers asked for', async () => {
      const r = await throughOrigin(origin, '/star/x', () => get('/star/x', { origin: 'https://anyone.test' }));
      assert.equal(r.status, 200);
      assert.equal(hdr(r, 'access-control-allow-origin'), '*');
      assert.equal(hdr(r, 'access-control-allow-credentials'), undefined);
      const p = await withoutOrigin(origin, () => preflight('/star/x', { from: 'https://anyone.test', headers: 'x-one, x-two' }));
      assert.equal(p.status, 204);
      assert.equal(hdr(p, 'access-control-allow-origin'), '*');
      assert.deepEqual(items(p, 'access-control-allow-headers').sort(), ['x-one', 'x-two']);
      const none = await throughOrigin(origin, '/star/none', () => get('/star/none'));
      assertNoCors(none, 'no Origin on an origins "*" route');
    });

    test('error answers carry the CORS headers too (401 from JWT, 405), so a browser can read them', async () => {
      const r = await withoutOrigin(origin, () => get('/cors-jwt/x', { origin: APP }));
      assertJsonError(r, 401, 'no token');
      assert.equal(hdr(r, 'www-authenticate'), 'Bearer realm="edgeproxy"');
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      assert.deepEqual(items(r, 'access-control-expose-headers'), ['www-authenticate']);
      assert.ok(items(r, 'vary').includes('origin'));
      const bad = await withoutOrigin(origin, () => get('/cors-jwt/x', { origin: APP, ...bearer(flipSignature(sign(rsa, claims()))) }));
      assertInvalidToken(bad, /signature/, 'bad token');
      assert.equal(hdr(bad, 'access-control-allow-origin'), APP);
      const evil = await withoutOrigin(origin, () => get('/cors-jwt/x', { origin: 'https://evil.test' }));
      assertJsonError(evil, 401, 'disallowed origin');
      assertNoCors(evil, '401 to a disallowed origin');
      const m = await withoutOrigin(origin, () => get('/cors/x', { origin: APP }, 'DELETE'));
      assertJsonError(m, 405, 'DELETE');
      assert.equal(hdr(m, 'access-control-allow-origin'), APP);
      const ok = await throughOrigin(origin, '/cors-jwt/ok', () => get('/cors-jwt/ok', { origin: APP, ...bearer(sign(hs, claims())) }));
      assert.equal(ok.status, 200);
      assert.equal(hdr(ok, 'access-control-allow-origin'), APP);
    });

    test('a preflight is answered before auth: 204 on a JWT route without a token', async () => {
      const r = await withoutOrigin(origin, () => preflight('/cors-jwt/x', { method: 'GET', headers: 'authorization' }));
      assert.equal(r.status, 204, r.body.toString());
      assert.equal(hdr(r, 'access-control-allow-origin'), APP);
      assert.ok(items(r, 'access-control-allow-headers').includes('authorization'));
      assert.equal(hdr(r, 'www-authenticate'), undefined);
    });

    test('a cached response gets the CORS headers of each request, not of the one that filled the cache', async () => {
      const a = await throughOrigin(origin, '/cached/obj', () => get('/cached/obj', { origin: APP }), 'fill');
      assert.equal(a.status, 200);
      assert.equal(hdr(a, 'access-control-allow-origin'), APP);
      await sleep(150); // the fill commits
      const b = await withoutOrigin(origin, () => get('/cached/obj'), 'hit without Origin');
      assert.match(hdr(b, 'cache-status') || '', /hit/);
      assertNoCors(b, 'cache hit without Origin');
      const c = await withoutOrigin(origin, () => get('/cached/obj', { origin: 'https://evil.test' }), 'hit, disallowed');
      assert.match(hdr(c, 'cache-status') || '', /hit/);
      assertNoCors(c, 'cache hit from a disallowed origin');
      const d = await withoutOrigin(origin, () => get('/cached/obj', { origin: APP }), 'hit, allowed');
      assert.match(hdr(d, 'cache-status') || '', /hit/);
      assert.equal(hdr(d, 'access-control-allow-origin'), APP);
    });

    test('over HTTP/2: a preflight and a simple request', async () => {
      const p = await withoutOrigin(origin, () =>
        h2({
          port: tport,
          path: '/cors/h2',
          method: 'OPTIONS',
          headers: { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom' },
        }),
      );
      assert.equal(p.status, 204);
      assert.equal(hdr(p, 'access-control-allow-origin'), APP);
      assertMethods(p, ['get', 'post', 'put'], ['delete', 'patch', 'options']);
      assert.ok(items(p, 'access-control-allow-headers').includes('x-custom'));
      assert.equal(hdr(p, 'access-control-max-age'), '600');
      assert.ok(items(p, 'vary').includes('origin'), `vary ${hdr(p, 'vary')}`);
      const refused = await withoutOrigin(origin, () =>
        h2({ port: tport, path: '/cors/h2', method: 'OPTIONS', headers: { origin: 'https://evil.test', 'access-control-request-method': 'GET' } }),
      );
      assertJsonError(refused, 403, 'h2 preflight, disallowed origin');
      assertNoCors(refused, 'h2 preflight, disallowed origin');
      const s = await throughOrigin(origin, '/cors/h2', () => h2({ port: tport, path: '/cors/h2', headers: { origin: APP } }));
      assert.equal(s.status, 200);
      assert.equal(hdr(s, 'access-control-allow-origin'), APP);
      assert.deepEqual(items(s, 'access-control-expose-headers'), ['x-request-id', 'x-origin']);
      assert.ok(items(s, 'vary').includes('origin'));
      const e = await withoutOrigin(origin, () => h2({ port: tport, path: '/cors-jwt/h2', headers: { origin: APP } }));
      assertJsonError(e, 401, 'h2 401');
      assert.equal(hdr(e, 'access-control-allow-origin'), APP);
    });
  });
});

/* ------------------------------------------------------------------------------------------------------------------ */
/* JWKS reload and refusal                                                                                            */

describe('jwks file', () => {
  test('SIGHUP reloads the JWKS; a broken or missing file keeps the previous keys and the server up', async () => {
    const a = rsaKey('a');
    const b = ecKey('b');
    const origin = await startOrigin();
    const dir = tempDir('ep-auth-hup-');
    const file = path.join(dir, 'keys.json');
    writeJwks(file, [a]);
    const edge = await startEdge(
      `threads: 2
listen: [{ address: 127.0.0.1, port: 0 }]
hosts:
  "*":
    routes:
      - path: /api/
        origin: { url: "${origin.url}" }
        auth: { jwt: { jwks: keys.json } }
`,
      { dir },
    );
    try {
      const port = edge.ports[0];
      const tokA = sign(a, { sub: 'a', exp: nowS() + 600 });
      const tokB = sign(b, { sub: 'b', exp: nowS() + 600 });
      const status = async (token) => (await h1({ port, path: '/api/x', headers: bearer(token) })).status;
      const hupLines = () => edge.logs().split('\n').filter((l) => l.includes('SIGHUP')).length;

      assert.equal(await status(tokA), 200, 'key A at start');
      const refused = await h1({ port, path: '/api/x', headers: bearer(tokB) });
      assertInvalidToken(refused, /no key/, 'key B before the reload');

      writeJwks(file, [b]);
      edge.proc.kill('SIGHUP');
      assert.ok(await poll(async () => (await status(tokB)) === 200, 10000), `key B never accepted after SIGHUP:\n${edge.logs()}`);
      assert.match(edge.logs(), /SIGHUP: route \/api\/: 1 JWKS keys loaded from .*keys\.json/);
      assert.equal(await status(tokA), 401, 'key A is gone after the reload (the set is replaced, not merged)');

      for (const [what, breakIt] of [
        ['a file that is not JSON', () => fs.writeFileSync(file, '{"keys": [')],
        ['a key that does not parse', () => writeJwks(file, [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'x' }])],
        ['no keys', () => writeJwks(file, [])],
        ['a missing file', () => fs.rmSync(file)],
      ]) {
        const seen = hupLines();
        breakIt();
        edge.proc.kill('SIGHUP');
        assert.ok(await poll(() => hupLines() > seen, 10000), `${what}: no SIGHUP message:\n${edge.logs()}`);
        assert.match(edge.logs().split('\n').filter((l) => l.includes('SIGHUP')).at(-1), /keeps its previous keys/, what);
        assert.equal(edge.exitCode, undefined, `${what}: edgeproxy exited:\n${edge.logs()}`);
        assert.equal(await status(tokB), 200, `${what}: key B still passes`);
        assert.equal(await status(tokA), 401, `${what}: key A still refused`);
      }

      // Reloads under load: requests in flight while the set is swapped never fail for another reason.
      writeJwks(file, [a, b]);
      const results = [];
      const load = (async () => {
        for (let i = 0; i < 40; ++i) results.push(await status(tokB));
      })();
      for (let i = 0; i < 5; ++i) {
        edge.proc.kill('SIGHUP');
        await sleep(20);
      }
      await load;
      assert.deepEqual([...new Set(results)], [200]);
      assert.ok(await poll(async () => (await status(tokA)) === 200, 10000), 'key A back after the last reload');
      await edge.stopClean();
    } finally {
      await origin.close();
    }
  });

  // [what, JWKS file content (a string) or null (no file), what the message must also say]
  const badFiles = [
    ['missing file', null, /No such file or directory/],
    ['not JSON', '{"keys": [', /line \d+/],
    ['no "keys" array', '{"k": []}', /keys/],
    ['no usable key', JSON.stringify({ keys: [] }), /no usable key/],
    ['an RSA key of 1024 bits', () => JSON.stringify({ keys: [rsaKey('small', 1024).jwk] }), /2048/],
    ['an EC key on P-384', () => JSON.stringify({ keys: [ecKey('p384', 'P-384').jwk] }), /P-256/],
    ['an oct key of 8 bytes', JSON.stringify({ keys: [{ kty: 'oct', k: b64u(Buffer.alloc(8, 1)) }] }), /oct key/],
    ['only keys for encryption (use "enc")', () => JSON.stringify({ keys: [{ ...rsaKey('e').jwk, use: 'enc' }] }), /no usable key/],
    ['an alg that is not for the key type', () => JSON.stringify({ keys: [{ ...ecKey('x').jwk, alg: 'RS256' }] }), /alg/],
    ['an unknown kty', JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: b64u(Buffer.alloc(32, 1)) }] }), /kty/],
  ];
  for (const [what, content, reason] of badFiles) {
    test(`a bad JWKS at start stops edgeproxy, naming file:line and auth.jwt.jwks: ${what}`, async () => {
      const dir = tempDir('ep-auth-bad-');
      const jwks = path.join(dir, 'jwks.json');
      if (content !== null) fs.writeFileSync(jwks, typeof content === 'function' ? content() : content);
      const text = `threads: 1
listen: [{ address: 127.0.0.1, port: 0 }]
hosts:
  "*":
    routes:
      - path: /open/
        origin: { url: "http://127.0.0.1:9" }
      - path: /api/
        origin: { url: "http://127.0.0.1:9" }
        auth:
          jwt:
            jwks: jwks.json
`;
      const file = path.join(dir, 'edge.yaml');
      fs.writeFileSync(file, text);
      const r = await runCli(['-c', file], { timeout: 15000 });
      assert.equal(r.signal, null, `killed: edgeproxy kept running on a bad JWKS:\n${r.stderr}`);
      assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
      assert.doesNotMatch(r.stdout + r.stderr, /edgeproxy: (listening|ready)/);
      // the line of the route or of its jwks key
      const lines = [lineOf(text, 'path: /api/'), lineOf(text, 'jwks: jwks.json')];
      const m = r.stderr.match(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):.*auth\\.jwt\\.jwks`));
      assert.ok(m, `no "${file}:LINE: ... auth.jwt.jwks" in: ${r.stderr}`);
      assert.ok(lines.includes(Number(m[1])), `line ${m[1]}, expected one of ${lines}: ${r.stderr}`);
      assert.ok(r.stderr.includes(jwks), `the JWKS path is not named: ${r.stderr}`);
      assert.match(r.stderr, reason);
      // edgeproxy -t checks the JWKS files too, with the same message
      const t = await runCli(['-t', '-c', file], { timeout: 15000 });
      assert.equal(t.code, 1, `edgeproxy -t passed a bad JWKS: ${t.stdout}${t.stderr}`);
      assert.equal(t.stderr.trim(), r.stderr.trim());
    });
  }
});
