// mint.mjs — mints the JWT unit-test fixtures with an implementation independent of
// Tollgate's C code: the `jose` npm package for well-formed tokens, Node's crypto for
// the hand-crafted hostile ones (alg none, key confusion, embedded keys, bad encoding).
//
// Writes keys/ (secrets, PEM public keys, JWKS files), cases/<name>/{token,expected}
// and rotation/{old,new}.token. See README.md. Run from anywhere:
//   npm install --prefix tests/unit/data/jwt/tools jose@5
//   node tests/unit/data/jwt/mint.mjs
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'tools', 'package.json'));
const jose = require('jose');

const NOW = 1900000000; // test_auth_jwt.c verifies at this time
const LEEWAY = 30;      // and with this leeway
const ISS = 'https://idp.example';
const AUD = 'tollgate';

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
for (const name of ['hs256', 'hs384', 'hs512', 'solo']) {
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
  // a key for encryption and an unknown key type are skipped, not fatal
  keys.push({ kty: 'OKP', crv: 'Ed25519', kid: 'ed', x: b64u(crypto.randomBytes(32)) });
  return JSON.stringify({ keys }, null, 2) + '\n';
}
fs.writeFileSync(path.join(keysDir, 'jwks.json'), await jwks(['jwks-rs1', 'jwks-es1']));
fs.writeFileSync(path.join(keysDir, 'jwks-rotated.json'), await jwks(['jwks-rs2', 'jwks-es1']));

// ---- signing ----
const claims = (extra = {}) => ({
  iss: ISS, aud: AUD, sub: 'alice', group_id: 'eng', role: 'member',
  iat: NOW - 60, exp: NOW + 3600, ...extra,
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

let count = 0;
function write(name, token, expected, issuer) {
  const d = path.join(casesDir, name);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'token'), token + '\n');
  fs.writeFileSync(path.join(d, 'expected'), expected + '\n');
  if (issuer) fs.writeFileSync(path.join(d, 'issuer'), issuer + '\n');
  count++;
}
const OK = 'ok user=alice group=eng role=member';
const flip = (tok, part, at) => {
  const parts = tok.split('.');
  const s = parts[part];
  const i = at < 0 ? s.length + at : at;
  parts[part] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return parts.join('.');
};
const pkcs8 = async (kid) => crypto.createPrivateKey(await jose.exportPKCS8(pairs[kid].privateKey));

// valid, every algorithm
for (const [kid, alg] of [['hs256', 'HS256'], ['hs384', 'HS384'], ['hs512', 'HS512'],
                          ['rs256', 'RS256'], ['rs384', 'RS384'], ['rs512', 'RS512'],
                          ['es256', 'ES256'], ['es384', 'ES384']]) {
  write(`valid_${kid}`, await mint(kid, alg, claims()), OK);
}
write('valid_jwks_rs256', await mint('jwks-rs1', 'RS256', claims()), OK);
write('valid_jwks_es256', await mint('jwks-es1', 'ES256', claims()), OK);
write('valid_no_kid_single_key',
      craft({ alg: 'HS256', typ: 'JWT' }, claims(), secrets.solo, 'HS256'), OK, 'single');
write('no_kid_many_keys', craft({ alg: 'HS256' }, claims(), secrets.hs256, 'HS256'),
      'declined: token has no kid');

// time
write('expired', await mint('hs256', 'HS256', claims({ exp: NOW - 3600 })), 'declined: token expired');
write('exp_leeway_minus_1s', await mint('hs256', 'HS256', claims({ exp: NOW - LEEWAY - 1 })),
      'declined: token expired');
write('exp_leeway_exact', await mint('hs256', 'HS256', claims({ exp: NOW - LEEWAY })),
      'declined: token expired');
write('exp_leeway_plus_1s', await mint('hs256', 'HS256', claims({ exp: NOW - LEEWAY + 1 })), OK);
write('nbf_future', await mint('rs256', 'RS256', claims({ nbf: NOW + 3600 })),
      'declined: token not yet valid');
write('nbf_leeway_plus_1s', await mint('rs256', 'RS256', claims({ nbf: NOW + LEEWAY + 1 })),
      'declined: token not yet valid');
write('nbf_leeway_exact', await mint('rs256', 'RS256', claims({ nbf: NOW + LEEWAY })), OK);
write('nbf_leeway_minus_1s', await mint('rs256', 'RS256', claims({ nbf: NOW + LEEWAY - 1 })), OK);
write('missing_exp', await mint('hs256', 'HS256', claims({ exp: undefined })),
      'declined: token has no exp');
write('exp_not_a_number', craft({ alg: 'HS256', kid: 'hs256' }, claims({ exp: String(NOW + 3600) }),
      secrets.hs256, 'HS256'), 'declined: token has no exp');

// iss, aud, claims
write('wrong_iss', await mint('es256', 'ES256', claims({ iss: 'https://evil.example' })),
      'declined: wrong iss');
write('missing_iss', await mint('es256', 'ES256', claims({ iss: undefined })), 'declined: wrong iss');
write('wrong_aud', await mint('es256', 'ES256', claims({ aud: 'someone-else' })), 'declined: wrong aud');
write('missing_aud', await mint('es256', 'ES256', claims({ aud: undefined })), 'declined: wrong aud');
write('aud_array_contains', await mint('rs256', 'RS256', claims({ aud: ['other', AUD] })), OK);
write('aud_array_without', await mint('rs256', 'RS256', claims({ aud: ['other', 'tollgate2'] })),
      'declined: wrong aud');
write('missing_user', await mint('hs256', 'HS256', claims({ sub: undefined })),
      'declined: token has no user claim');
write('groups_array_first', await mint('hs256', 'HS256',
      claims({ sub: 'bob', group_id: undefined, role: undefined, groups: ['first', 'second'] })),
      'ok user=bob group=first role=');
write('group_claim_before_groups', await mint('hs256', 'HS256', claims({ groups: ['first'] })), OK);
write('no_group_no_role', await mint('hs256', 'HS256',
      claims({ group_id: undefined, role: undefined })), 'ok user=alice group= role=');

// the algorithm is the key's, never the token's
const body = enc(claims());
write('alg_none_empty_signature', `${enc({ alg: 'none', kid: 'hs256' })}.${body}.`,
      'declined: token is not a compact JWS');
write('alg_none_with_signature', `${enc({ alg: 'none', kid: 'hs256' })}.${body}.${b64u('x')}`,
      'declined: alg does not match the key');
write('alg_None', craft({ alg: 'None', kid: 'hs256' }, claims(), secrets.hs256, 'HS256'),
      'declined: alg does not match the key');
write('alg_none_no_kid_single_key', `${enc({ alg: 'none' })}.${body}.${b64u('x')}`,
      'declined: alg does not match the key', 'single');
write('hs256_signed_with_rsa_public_key',
      craft({ alg: 'HS256', kid: 'rs256' }, claims(),
            fs.readFileSync(path.join(keysDir, 'rs256.pem')), 'HS256'),
      'declined: alg does not match the key');
write('alg_differs_from_key', craft({ alg: 'RS256', kid: 'rs384' }, claims(), await pkcs8('rs384'), 'RS256'),
      'declined: alg does not match the key');
write('hs512_header_on_hs256_key', craft({ alg: 'HS512', kid: 'hs256' }, claims(), secrets.hs256, 'HS512'),
      'declined: alg does not match the key');
write('unknown_kid', await mint('hs256', 'HS256', claims(), { kid: 'nope' }), 'declined: unknown kid');
for (const [param, value] of [['jwk', await jose.exportJWK(pairs.rs256.publicKey)],
                              ['jku', 'https://evil.example/jwks.json'],
                              ['x5u', 'https://evil.example/cert.pem'],
                              ['x5c', ['MIIBfake']]]) {
  write(`embedded_${param}`, craft({ alg: 'RS256', kid: 'rs256', [param]: value }, claims(),
        await pkcs8('rs256'), 'RS256'), 'declined: header names its own key');
}
write('crit_header', craft({ alg: 'HS256', kid: 'hs256', crit: ['exp'], exp: 1 }, claims(),
      secrets.hs256, 'HS256'), 'declined: header names unsupported extensions');

// signatures
write('bad_signature_hs256', flip(await mint('hs256', 'HS256', claims()), 2, 5), 'declined: bad signature');
write('bad_signature_rs256', flip(await mint('rs256', 'RS256', claims()), 2, 5), 'declined: bad signature');
write('bad_signature_es256', flip(await mint('es256', 'ES256', claims()), 2, 5), 'declined: bad signature');
write('payload_changed', flip(await mint('rs256', 'RS256', claims()), 1, 5), 'declined: bad signature');
{
  const input = `${enc({ alg: 'ES256', kid: 'es256' })}.${body}`;
  const der = crypto.sign('sha256', Buffer.from(input), { key: await pkcs8('es256'), dsaEncoding: 'der' });
  write('es256_der_signature', `${input}.${b64u(der)}`, 'declined: bad signature');
}
write('signed_by_other_key', craft({ alg: 'RS256', kid: 'rs256' }, claims(), await pkcs8('rs512'), 'RS256'),
      'declined: bad signature');

// shape and encoding
const good = await mint('hs256', 'HS256', claims());
write('truncated_two_parts', good.split('.').slice(0, 2).join('.'), 'declined: token is not a compact JWS');
write('four_parts', `${good}.${b64u('x')}`, 'declined: token is not a compact JWS');
write('empty_token', '', 'declined: token is not a compact JWS');
write('non_base64url_char', good.slice(0, 10) + '+' + good.slice(11), 'declined: token is not base64url');
write('base64_padding', `${good}==`, 'declined: token is not base64url');
write('header_not_json', `${b64u('not json')}.${body}.${b64u('x')}`, 'declined: header is not a JSON object');
write('oversized_header', craft({ alg: 'HS256', kid: 'hs256', pad: 'x'.repeat(1100) }, claims(),
      secrets.hs256, 'HS256'), 'declined: header too large');
write('oversized_token', await mint('hs256', 'HS256', claims({ pad: 'y'.repeat(9000) })),
      'declined: token too large');

// JWKS rotation (test_auth_jwt.c rewrites the JWKS file between the two)
fs.writeFileSync(path.join(rotDir, 'old.token'), (await mint('jwks-rs1', 'RS256', claims())) + '\n');
fs.writeFileSync(path.join(rotDir, 'new.token'), (await mint('jwks-rs2', 'RS256', claims())) + '\n');

console.log(`minted ${count} cases`);
