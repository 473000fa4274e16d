// A Node receiver for the classic hex scheme, written from the algorithm
// alone (no hookline code, no package): the hex HMAC-SHA256 of the raw body
// under the secret string, compared in constant time with the
// <prefix>-signature header.
//
// stdin:  {"cases": [{"name", "prefix", "body" (base64), "headers",
//          "secrets" [...]}]}
// stdout: {"results": [{"name", "ok" [one bool per secret]}]}
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';

function verify(secret, rawBody, signature) {
  const expected = Buffer.from(createHmac('sha256', secret).update(rawBody).digest('hex'), 'utf8');
  const received = Buffer.from(signature ?? '', 'utf8');
  // timingSafeEqual throws on different lengths; a length is no secret.
  return expected.length === received.length && timingSafeEqual(expected, received);
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = input.cases.map((c) => {
  // Node's http module gives header names in lower case.
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const signature = headers[`${c.prefix.toLowerCase()}-signature`];
  const body = Buffer.from(c.body ?? '', 'base64');
  return { name: c.name, ok: c.secrets.map((s) => verify(s, body, signature)) };
});
process.stdout.write(JSON.stringify({ results }));
