// mint.mjs — mints the JWT fixtures of tests/integration/test_jwt.py with an
// implementation independent of Tollgate's C code: the `jose` npm package for
// well-formed tokens, Node's crypto for the hand-crafted hostile ones (alg none,
// key confusion, embedded keys, bad encodings).
//
// Its own key set (the unit fixtures' private keys are not kept): writes keys/
// (HMAC secrets, PEM public keys, two JWKS files), cases/<name>/{token,expected}
// and rotation/{old,new}.token. Tokens expire in 2100, so the committed files
// stay valid; the tests mint the ones that need the current time themselves
// (HS256, Python's hmac). See README.md. Run from anywhere:
//   npm install --prefix tests/integration/data/jwt/tools jose@5
//   node tests/integration/data/jwt/mint.mjs
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'tools', 'package.json'));
const jose = require('jose');

// test_jwt.py configures the issuers with these
const ISS = 'https://idp.tollgate.test';      // create_unknown: false
const JIT_ISS = 'https://jit.tollgate.test';  // create_unknown: true, one key, claims email/teams/tg_role
const AUD = 'tollgate-it';
const IAT = 1700000000;
const EXP = 4102444800;                       // 2100-01-01

const keysDir = path.join(here, 'keys');
const casesDir = path.join(here, 'cases');
const rotDir = path.join(here, 'rotation');
for (const d of [keysDir, casesDir, rotDir]) {
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d, { recursive: true });
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const enc = (obj) => b64u(JSON.stringify(obj));

// ---- keys ----
const secrets = {};
for (const name of ['hs256', 'hs384', 'hs512', 'jit']) {
  secrets[name] = b64u(crypto.randomBytes(64)); // 86 bytes: enough for HS512
  fs.writeFileSync(path.join(keysDir, `${name}.secret`), secrets[name] + '\n');
}
const pairs = {};
for (const [name, alg] of [['rs256', 'RS256'], ['rs384', 'RS384'], ['rs512', 'RS512'],
                           ['es256', 'ES256'], ['es384', 'ES384'],
                           ['jwks-rs1', 'RS256'], ['jwks-rs2', 'RS256'], ['jwks-es1', 'ES256']]) {
  pairs[name] = await jose.generateKeyPair(alg, { extractable: true });
  pairs[name].alg = alg;
  fs.writeFileSync(path.join(keysDir, `${name}.pem`), await jose.exportSPKI(pairs[name].publicKey));
}
async function jwks(names) {
  const keys = [];
  for (const n of names) {
    const jwk = await jose.exportJWK(pairs[n].publicKey);
    keys.push({ ...jwk, kid: n, alg: pairs[n].alg, use: 'sig' });
  }
  return JSON.stringify({ keys }, null, 2) + '\n';
}
fs.writeFileSync(path.join(keysDir, 'jwks.json'), await jwks(['jwks-rs1', 'jwks-es1']));
fs.writeFileSync(path.join(keysDir, 'jwks-rotated.json'), await jwks(['jwks-rs2', 'jwks-es1']));

// ---- signing ----
const claims = (extra = {}) => ({
  iss: ISS, aud: AUD, sub: 'alice', group_id: 'eng', role: 'member',
  iat: IAT, exp: EXP, ...extra,
});
const jitClaims = (extra = {}) => ({
  iss: JIT_ISS, aud: AUD, email: 'newbie@example.test', teams: ['newteam'], tg_role: 'member',
  iat: IAT, exp: EXP, ...extra,
});
function strip(obj) { // undefined values drop a claim
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}
function keyFor(kid) {
  if (kid in secrets) return new TextEncoder().encode(secrets[kid]);
  return pairs[kid].privateKey;
}
// well-formed tokens: jose
async function mint(kid, alg, payload, header = {}) {
  return new jose.SignJWT(strip(payload))
    .setProtectedHeader(strip({ alg, kid, typ: 'JWT', ...header }))
    .sign(keyFor(kid));
}
// hand-crafted tokens: Node's crypto on exactly the header given
const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };
function craft(header, payload, signKey, alg) {
  const input = `${enc(header)}.${enc(strip(payload))}`;
  const bits = alg.slice(2);
  let sig;
  if (alg.startsWith('HS')) sig = crypto.createHmac(HASH[bits], signKey).update(input).digest();
  else if (alg.startsWith('RS')) sig = crypto.sign(HASH[bits], Buffer.from(input), signKey);
  else sig = crypto.sign(HASH[bits], Buffer.from(input), { key: signKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}
const pkcs8 = async (kid) => crypto.createPrivateKey(await jose.exportPKCS8(pairs[kid].privateKey));

// expected: "200 user=U group=G" (the usage row's), or "STATUS error_type message-part"
let count = 0;
function write(name, token, expected, via) {
  const d = path.join(casesDir, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'token'), token + '\n');
  fs.writeFileSync(path.join(d, 'expected'), expected + '\n');
  if (via) fs.writeFileSync(path.join(d, 'via'), via + '\n'); // header other than Bearer
  count++;
}
const OK = '200 user=alice group=eng';
const DENY = (reason) => `401 authentication_error invalid bearer token: ${reason}`;
const flip = (tok, part, at) => {
  const parts = tok.split('.');
  const s = parts[part];
  const i = at < 0 ? s.length + at : at;
  parts[part] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return parts.join('.');
};

// valid, every algorithm
for (const [kid, alg] of [['hs256', 'HS256'], ['hs384', 'HS384'], ['hs512', 'HS512'],
                          ['rs256', 'RS256'], ['rs384', 'RS384'], ['rs512', 'RS512'],
                          ['es256', 'ES256'], ['es384', 'ES384']]) {
  write(`valid_${kid}`, await mint(kid, alg, claims()), OK);
}
write('valid_jwks_rs256', await mint('jwks-rs1', 'RS256', claims()), OK);
write('valid_jwks_es256', await mint('jwks-es1', 'ES256', claims()), OK);
write('aud_array_contains', await mint('rs256', 'RS256', claims({ aud: ['other', AUD] })), OK);
write('no_kid_many_keys', craft({ alg: 'HS256' }, claims(), secrets.hs256, 'HS256'),
      DENY('token has no kid'));

// time (far from now; the edges around the leeway are minted by the test)
write('expired', await mint('hs256', 'HS256', claims({ exp: 1600000000 })), DENY('token expired'));
write('nbf_future', await mint('rs256', 'RS256', claims({ nbf: 4000000000 })),
      DENY('token not yet valid'));
write('nbf_past', await mint('rs256', 'RS256', claims({ nbf: IAT })), OK);
write('missing_exp', await mint('hs256', 'HS256', claims({ exp: undefined })), DENY('token has no exp'));

// iss, aud, user, group, role
write('wrong_iss', await mint('es256', 'ES256', claims({ iss: 'https://evil.example' })),
      DENY('wrong iss'));
write('missing_iss', await mint('es256', 'ES256', claims({ iss: undefined })), DENY('wrong iss'));
write('wrong_aud', await mint('es256', 'ES256', claims({ aud: 'someone-else' })), DENY('wrong aud'));
write('aud_array_without', await mint('rs256', 'RS256', claims({ aud: ['other', 'tollgate'] })),
      DENY('wrong aud'));
write('missing_user', await mint('hs256', 'HS256', claims({ sub: undefined })),
      DENY('token has no user claim'));
write('user_too_long', await mint('hs256', 'HS256', claims({ sub: 'u'.repeat(300) })),
      DENY('claim too long'));
write('unknown_user', await mint('rs256', 'RS256', claims({ sub: 'mallory', group_id: 'eng' })),
      '403 permission_error user "mallory" is not known to this gateway');
write('unknown_group', await mint('rs256', 'RS256', claims({ group_id: 'nosuchgroup' })),
      '403 permission_error group "nosuchgroup" is not known to this gateway');
write('user_not_an_identifier', await mint('hs256', 'HS256', claims({ sub: 'alice smith' })),
      "403 permission_error the token's user, group or role is not a valid identifier");
write('groups_array_first', await mint('hs256', 'HS256',
      claims({ sub: 'bob', group_id: undefined, groups: ['ops', 'eng'] })), '200 user=bob group=ops');
write('group_claim_before_groups', await mint('hs256', 'HS256',
      claims({ sub: 'bob', group_id: 'eng', groups: ['ops'] })), '200 user=bob group=eng');
write('no_group_home_group', await mint('hs256', 'HS256',
      claims({ sub: 'bob', group_id: undefined, role: undefined })), '200 user=bob group=eng');
write('role_claim_restricted', await mint('hs256', 'HS256', claims({ role: 'viewer' })),
      '403 permission_error endpoint "/v1/messages" is not allowed for role "viewer"');

// the algorithm is the key's, never the token's
const body = enc(claims());
write('alg_none_empty_signature', `${enc({ alg: 'none', kid: 'hs256' })}.${body}.`,
      DENY('token is not a compact JWS'));
write('alg_none_with_signature', `${enc({ alg: 'none', kid: 'hs256' })}.${body}.${b64u('x')}`,
      DENY('alg does not match the key'));
write('alg_None', craft({ alg: 'None', kid: 'hs256' }, claims(), secrets.hs256, 'HS256'),
      DENY('alg does not match the key'));
write('alg_none_no_kid', `${enc({ alg: 'none' })}.${body}.${b64u('x')}`, DENY('token has no kid'));
write('hs256_signed_with_rsa_public_key',
      craft({ alg: 'HS256', kid: 'rs256' }, claims(),
            fs.readFileSync(path.join(keysDir, 'rs256.pem')), 'HS256'),
      DENY('alg does not match the key'));
write('hs256_signed_with_jwks_public_key',
      craft({ alg: 'HS256', kid: 'jwks-rs1' }, claims(),
            fs.readFileSync(path.join(keysDir, 'jwks-rs1.pem')), 'HS256'),
      DENY('alg does not match the key'));
write('alg_differs_from_key', craft({ alg: 'RS256', kid: 'rs384' }, claims(), await pkcs8('rs384'), 'RS256'),
      DENY('alg does not match the key'));
write('unknown_kid', await mint('hs256', 'HS256', claims(), { kid: 'nope' }), DENY('unknown kid'));
for (const [param, value] of [['jwk', await jose.exportJWK(pairs.rs256.publicKey)],
                              ['jku', 'https://evil.example/jwks.json'],
                              ['x5u', 'https://evil.example/cert.pem'],
                              ['x5c', ['MIIBfake']]]) {
  write(`embedded_${param}`, craft({ alg: 'RS256', kid: 'rs256', [param]: value }, claims(),
        await pkcs8('rs256'), 'RS256'), DENY('header names its own key'));
}
write('crit_header', craft({ alg: 'HS256', kid: 'hs256', crit: ['exp'], exp: 1 }, claims(),
      secrets.hs256, 'HS256'), DENY('header names unsupported extensions'));

// signatures
write('bad_signature_hs256', flip(await mint('hs256', 'HS256', claims()), 2, 5), DENY('bad signature'));
write('bad_signature_rs256', flip(await mint('rs256', 'RS256', claims()), 2, 5), DENY('bad signature'));
write('bad_signature_es256', flip(await mint('es256', 'ES256', claims()), 2, 5), DENY('bad signature'));
// (a change near the start of the payload would break the iss the issuer is picked by)
write('payload_changed', flip(await mint('rs256', 'RS256', claims()), 1, -8), DENY('bad signature'));
{
  const input = `${enc({ alg: 'ES256', kid: 'es256' })}.${body}`;
  const der = crypto.sign('sha256', Buffer.from(input), { key: await pkcs8('es256'), dsaEncoding: 'der' });
  write('es256_der_signature', `${input}.${b64u(der)}`, DENY('bad signature'));
}
write('signed_by_other_key', craft({ alg: 'RS256', kid: 'rs256' }, claims(), await pkcs8('rs512'), 'RS256'),
      DENY('bad signature'));
// 14 characters off a 342-character signature: still whole base64url quanta
write('signature_truncated', (await mint('rs256', 'RS256', claims())).slice(0, -14), DENY('bad signature'));
// 13 off: a length no base64url text has
write('signature_truncated_odd_length', (await mint('rs256', 'RS256', claims())).slice(0, -13),
      DENY('token is not base64url'));

// shape and encoding
const good = await mint('hs256', 'HS256', claims());
// not three parts: not taken for a JWT at all, so it is an unknown API key
write('truncated_two_parts', good.split('.').slice(0, 2).join('.'),
      '401 authentication_error invalid x-api-key');
write('four_parts', `${good}.${b64u('x')}`, '401 authentication_error invalid x-api-key');
write('non_base64url_char', good.slice(0, 10) + '+' + good.slice(11), DENY('token is not base64url'));
write('base64_padding', `${good}==`, DENY('token is not base64url'));
write('header_not_json', `eyJub3QganNvbg.${body}.${b64u('x')}`, DENY('header is not a JSON object'));
{
  const input = `${enc({ alg: 'HS256', kid: 'hs256' })}.${b64u('[1,2]')}`;
  const sig = crypto.createHmac('sha256', secrets.hs256).update(input).digest();
  // two issuers are configured: the one named by the payload's iss is used, and
  // a payload that is not an object names none
  write('payload_not_json', `${input}.${b64u(sig)}`, DENY('wrong iss'));
}
write('oversized_header', craft({ alg: 'HS256', kid: 'hs256', pad: 'x'.repeat(1100) }, claims(),
      secrets.hs256, 'HS256'), DENY('header too large'));
// a valid token in x-api-key is an (unknown) API key, not a bearer token
write('jwt_in_x_api_key', await mint('hs256', 'HS256', claims()),
      '401 authentication_error invalid x-api-key', 'x-api-key');

// the just-in-time issuer (one key: a token without kid is checked with it)
write('jit_new_user', await mint('jit', 'HS256', jitClaims(), { kid: undefined }),
      '200 user=newbie@example.test group=newteam');
write('jit_new_user_no_group', await mint('jit', 'HS256', jitClaims({ email: 'loner', teams: undefined }),
      { kid: undefined }), '403 permission_error user "loner" is not known to this gateway');
write('jit_known_user_new_group', await mint('jit', 'HS256',
      jitClaims({ email: 'alice', teams: ['jit-team'] }), { kid: undefined }),
      '200 user=alice group=jit-team');
write('jit_key_of_other_issuer', await mint('hs256', 'HS256', jitClaims()), DENY('unknown kid'));

// JWKS rotation (test_jwt.py swaps the JWKS file between the two)
fs.writeFileSync(path.join(rotDir, 'old.token'), (await mint('jwks-rs1', 'RS256', claims())) + '\n');
fs.writeFileSync(path.join(rotDir, 'new.token'), (await mint('jwks-rs2', 'RS256', claims())) + '\n');

console.log(`minted ${count} cases`);
