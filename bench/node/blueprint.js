// The logic of the AWS Lambda Node.js blueprint for CloudWatch Logs subscriptions
// (zlib.gunzipSync of the base64 payload, JSON.parse of the payload and of every message),
// with the same condition as the Go rule, timed over the Lambda events in a directory.
// Usage: node blueprint.js DIR [ITERATIONS]; prints one JSON line with ns per pass.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const dir = process.argv[2];
const iterations = Number(process.argv[3] || 10);
const events = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));

function handle(raw) {
  const event = JSON.parse(raw);
  const payload = JSON.parse(zlib.gunzipSync(Buffer.from(event.awslogs.data, 'base64')).toString('utf8'));
  let matches = 0;
  for (const le of payload.logEvents) {
    let a;
    try { a = JSON.parse(le.message); } catch (e) { continue; }
    const verb = typeof a.verb === 'string' ? a.verb.toLowerCase() : '';
    const reason = a.responseStatus && typeof a.responseStatus.reason === 'string' ? a.responseStatus.reason.toLowerCase() : '';
    if (verb === 'create' && reason === 'forbidden') matches++;
  }
  return matches;
}

let matches = 0;
for (let i = 0; i < 2; i++) for (const e of events) matches = handle(e); // warm up the JIT
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) for (const e of events) matches += handle(e);
const ns = Number(process.hrtime.bigint() - start) / iterations;
console.log(JSON.stringify({ node: process.version, nsPerPass: ns, events: events.length, matches }));
