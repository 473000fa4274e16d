// A Node receiver using the npm standardwebhooks package, as its README
// shows: new Webhook(secret).verify(rawBody, headers).
//
// stdin:  {"cases": [{"name", "body" (base64), "headers" {name: value},
//          "secrets" [whsec_...], "parse_json" bool}]}
// stdout: {"version", "results": [{"name", "checks": [{"ok", "error_name",
//          "error", "parsed"}]}]} with one check per secret, in order.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import standardwebhooks from 'standardwebhooks';

const { Webhook } = standardwebhooks;
const { version } = createRequire(import.meta.url)('standardwebhooks/package.json');

function check(secret, body, headers, parseJSON) {
  try {
    const wh = new Webhook(secret);
    // The package JSON-parses a verified body unless told not to; random
    // bodies are not JSON.
    const parsed = parseJSON ? wh.verify(body, headers) : wh.verify(body, headers, { jsonParse: false });
    return { ok: true, parsed };
  } catch (err) {
    return { ok: false, error_name: err?.name ?? typeof err, error: String(err?.message ?? err) };
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = input.cases.map((c) => {
  const body = Buffer.from(c.body ?? '', 'base64'); // the raw bytes, as express.raw() gives them
  return { name: c.name, checks: c.secrets.map((s) => check(s, body, c.headers, c.parse_json)) };
});
process.stdout.write(JSON.stringify({ version, results }));
