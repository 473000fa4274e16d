// A Node sender using the npm standardwebhooks package:
// new Webhook(secret).sign(msgId, date, payload) for each secret, joined
// with spaces during a rotation, in the headers a sender writes.
//
// stdin:  {"cases": [{"name", "secrets" [...], "msg_id", "time_ms",
//          "body" (base64)}]}
// stdout: {"version", "results": [{"name", "signatures" [one per secret],
//          "headers" {"webhook-id", "webhook-timestamp", "webhook-signature"}}]}
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import standardwebhooks from 'standardwebhooks';

const { Webhook } = standardwebhooks;
const { version } = createRequire(import.meta.url)('standardwebhooks/package.json');

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = input.cases.map((c) => {
  const body = Buffer.from(c.body ?? '', 'base64');
  const date = new Date(c.time_ms);
  const signatures = c.secrets.map((s) => new Webhook(s).sign(c.msg_id, date, body));
  return {
    name: c.name,
    signatures,
    headers: {
      'webhook-id': c.msg_id,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': signatures.join(' '),
    },
  };
});
process.stdout.write(JSON.stringify({ version, results }));
