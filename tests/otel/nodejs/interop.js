// nats.js's side of the tracing interop tests (tests/otel/test_otel_interop.py).
//   node interop.js consume URL SUBJECT   prints "ready", then the first message's trace
//                                         headers as one JSON line, and exits
//   node interop.js publish URL SUBJECT TRACEPARENT TRACESTATE
//                                         publishes one message with those headers
"use strict";
const { connect, headers } = require("nats");

async function main() {
  const [mode, url, subject, traceparent, tracestate] = process.argv.slice(2);
  const nc = await connect({ servers: url, timeout: 5000 });
  if (mode === "consume") {
    const sub = nc.subscribe(subject, { max: 1 });
    await nc.flush();
    console.log("ready");
    for await (const msg of sub) {
      const h = msg.headers;
      console.log(
        JSON.stringify({
          traceparent: h ? h.get("traceparent") : "",
          tracestate: h ? h.get("tracestate") : "",
          baggage: h ? h.get("baggage") : "",
          data: new TextDecoder().decode(msg.data),
        })
      );
    }
  } else if (mode === "publish") {
    const h = headers();
    h.set("traceparent", traceparent);
    h.set("tracestate", tracestate);
    nc.publish(subject, new TextEncoder().encode("from nats.js"), { headers: h });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  await nc.drain();
}

const timer = setTimeout(() => {
  console.error("interop.js: timed out");
  process.exit(2);
}, 20000);
main().then(
  () => clearTimeout(timer),
  (err) => {
    console.error(err);
    process.exit(1);
  }
);
