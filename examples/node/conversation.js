// A whole surgedesk conversation from Node.js, as a frontend engineer writes it:
// @grpc/grpc-js with @grpc/proto-loader reading the contract's .proto files.
//
//   surgedesk serve                      # in another shell (the embedded default)
//   cd examples/node && npm ci && node conversation.js
//
// Environment: SURGEDESK_ADDRESS (default 127.0.0.1:50051); tokens are minted with
// `surgedesk token` for the engine's data directory (SURGEDESK_DATA_DIR, default
// ./surgedesk-data), or given as SURGEDESK_SERVICE_TOKEN and SURGEDESK_AGENT_TOKEN (an agent
// token for SURGEDESK_AGENT, default "bob", who serves "presale" in the sample desk).
//
// It drives: a start (position and estimate), the agent online and assigned, messages both
// ways, a close request and its confirmation, a rating, the history page by page, and a
// refusal whose google.rpc.Status details it decodes. It exits non-zero on any surprise.
"use strict";

const path = require("path");
const fs = require("fs");
const { execFileSync } = require("child_process");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTOS = path.resolve(__dirname, "../../protos");
const ADDRESS = process.env.SURGEDESK_ADDRESS || "127.0.0.1:50051";
const AGENT = process.env.SURGEDESK_AGENT || "bob";

// The loader options a Node developer needs with this contract:
//  keepCase  - field names as in the .proto (customer_id, not customerId);
//  longs     - int64 fields (position, tickets_ahead) as strings, not Long objects;
//  enums     - enum values as their names ("TICKET_STATE_QUEUED");
//  defaults  - unset fields present with their default (proto3 has no "missing");
//  oneofs    - a oneof's chosen field named in a virtual property (TicketEvent.kind);
//  includeDirs - where "surgedesk/v1/common.proto" and google/protobuf/* resolve.
const definition = protoLoader.loadSync(
  ["surgedesk/v1/customer.proto", "surgedesk/v1/agent.proto", "surgedesk/v1/admin.proto"],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    includeDirs: [PROTOS] });
const v1 = grpc.loadPackageDefinition(definition).surgedesk.v1;

// The published retry policy (docs/API.md, "Retries"): UNAVAILABLE and CANCELLED are retried
// for the calls that are safe to repeat.
const serviceConfig = fs.readFileSync(path.join(PROTOS, "surgedesk/v1/service_config.json"), "utf8");
const options = { "grpc.service_config": serviceConfig, "grpc.enable_retries": 1 };
const credentials = grpc.credentials.createInsecure();
const customers = new v1.CustomerService(ADDRESS, credentials, options);
const agents = new v1.AgentService(ADDRESS, credentials, options);

function token(role, subject, envName) {
  if (process.env[envName]) return process.env[envName];
  const dataDir = process.env.SURGEDESK_DATA_DIR || "surgedesk-data";
  return execFileSync("surgedesk", ["token", "--role", role, "--subject", subject,
                                    "--data-dir", dataDir]).toString().trim();
}

function bearer(tokenText) {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${tokenText}`);
  return md;
}

const asWeb = bearer(token("service", "web-node", "SURGEDESK_SERVICE_TOKEN"));
const asAgent = bearer(token("agent", AGENT, "SURGEDESK_AGENT_TOKEN"));

// A unary call as a promise, with a deadline.
function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10_000);
    client[method](request, metadata, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

// Resolves with the first event of a stream that `wanted` accepts.
function waitFor(stream, wanted, what, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    const onData = (item) => {
      if (wanted(item)) {
        clearTimeout(timer);
        stream.removeListener("data", onData);
        resolve(item);
      }
    };
    stream.on("data", onData);
    stream.on("error", (err) => { if (err.code !== grpc.status.CANCELLED) reject(err); });
  });
}

function check(condition, message) {
  if (!condition) throw new Error(`unexpected: ${message}`);
}

// google.rpc.Status and the details surgedesk sends, to read a refusal's trailer.
const details = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message Any { string type_url = 1; bytes value = 2; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
`, { keepCase: true }).root;

function refusalDetails(err) {
  const [raw] = err.metadata.get("grpc-status-details-bin");
  const status = details.lookupType("google.rpc.Status").decode(raw);
  const out = {};
  for (const any of status.details) {
    const name = any.type_url.split("/").pop();  // e.g. google.rpc.ErrorInfo
    const type = details.lookup(name);
    if (type) out[name.split(".").pop()] = type.decode(any.value);
  }
  return out;
}

async function main() {
  const customerId = `node-${Date.now()}`;
  await call(agents, "SetPresence", { agent_id: AGENT, presence: "PRESENCE_OFFLINE" }, asAgent);

  // 1. The customer starts: queued, with an honest position and estimate.
  const started = await call(customers, "StartConversation", {
    customer_id: customerId, channel: "CHANNEL_WEB", skill: "presale",
    first_message: "Is the blue one in stock?", idempotency_key: `${customerId}-start`,
  }, asWeb);
  const ticket = started.ticket;
  console.log(`started ${ticket.ticket_id}: ${ticket.state}, position ${ticket.estimate.position}, ` +
              `wait known: ${!ticket.estimate.wait_unknown}`);
  const status = await call(customers, "GetQueueStatus", { ticket_id: ticket.ticket_id }, asWeb);
  check(status.state === "TICKET_STATE_QUEUED" || status.state === "TICKET_STATE_AWAITING_AGENT",
        `state ${status.state}`);

  // 2. The customer watches the ticket; the agent watches its assignments, then comes online.
  const watch = customers.WatchTicket({ ticket_id: ticket.ticket_id }, asWeb);
  const assignments = agents.WatchAssignments({ agent_id: AGENT }, asAgent);
  const assigned = waitFor(assignments, (e) => e.ticket_event.kind === "assigned"
      && e.ticket_event.ticket_id === ticket.ticket_id, "assignment");
  const online = await call(agents, "SetPresence", { agent_id: AGENT, presence: "PRESENCE_ONLINE" }, asAgent);
  const event = await assigned;
  console.log(`assigned to ${event.ticket_event.assigned.agent_id} after ` +
              `${event.ticket_event.assigned.waited_seconds.toFixed(3)} s; ` +
              `${AGENT} holds ${online.active_ticket_ids.length} ticket(s)`);

  // 3. Messages both ways; the customer's watch sees the agent's.
  const agentWords = waitFor(watch, (e) => e.event.kind === "message"
      && e.event.message.author_role === "AUTHOR_ROLE_AGENT", "agent's message");
  await call(agents, "SendMessage", { ticket_id: ticket.ticket_id, text: "Yes, it ships today.",
                                      idempotency_key: `${customerId}-a1` }, asAgent);
  console.log(`customer saw: "${(await agentWords).event.message.text}"`);
  const reply = await call(customers, "SendMessage", { ticket_id: ticket.ticket_id,
      text: "Great, thanks!", idempotency_key: `${customerId}-c1` }, asWeb);
  check(reply.ticket.state === "TICKET_STATE_AWAITING_AGENT", `after the customer's message: ${reply.ticket.state}`);

  // 4. The agent asks to close; the customer confirms; the customer rates.
  const closing = await call(agents, "RequestClose", { ticket_id: ticket.ticket_id }, asAgent);
  check(closing.ticket.state === "TICKET_STATE_AWAITING_CONFIRMATION", closing.ticket.state);
  const closed = await call(customers, "ConfirmResolution", { ticket_id: ticket.ticket_id, resolved: true }, asWeb);
  check(closed.ticket.state === "TICKET_STATE_CLOSED", closed.ticket.state);
  console.log(`closed: ${closed.ticket.close_cause}`);
  const rated = waitFor(watch, (e) => e.event.kind === "rated", "rating");
  await call(customers, "Rate", { ticket_id: ticket.ticket_id, score: 5, comment: "fast" }, asWeb);
  console.log(`rating on the stream: ${(await rated).event.rated.score}`);
  watch.cancel();
  assignments.cancel();

  // 5. A second conversation, then the history, one ticket a page.
  const second = await call(customers, "StartConversation", {
    customer_id: customerId, channel: "CHANNEL_APP", skill: "presale", first_message: "One more thing",
  }, asWeb);
  check(second.ticket.previous_ticket_id === ticket.ticket_id, "the second continues the first");
  await call(agents, "CloseTicket", { ticket_id: second.ticket.ticket_id, summary: "answered" }, asAgent);
  const pages = [];
  let pageToken = "";
  do {
    const page = await call(customers, "GetHistory", { customer_id: customerId, page_size: 1,
                                                       page_token: pageToken }, asWeb);
    pages.push(page.tickets.map((t) => t.ticket_id));
    pageToken = page.next_page_token;
  } while (pageToken);
  check(pages.length === 2 && pages[0][0] === second.ticket.ticket_id && pages[1][0] === ticket.ticket_id,
        `pages ${JSON.stringify(pages)}`);
  console.log(`history: ${pages.length} pages, newest first`);

  // 6. A refusal a program can read: the field, and a stable reason.
  try {
    await call(customers, "StartConversation", { customer_id: customerId, channel: "CHANNEL_APP",
                                                 skill: "no-such-line" }, asWeb);
    check(false, "an unknown skill was accepted");
  } catch (err) {
    check(err.code === grpc.status.INVALID_ARGUMENT, `code ${err.code}`);
    const d = refusalDetails(err);
    check(d.BadRequest.field_violations[0].field === "skill", JSON.stringify(d));
    console.log(`refused: ${d.ErrorInfo.reason} on field ${d.BadRequest.field_violations[0].field}`);
  }
  await call(agents, "SetPresence", { agent_id: AGENT, presence: "PRESENCE_OFFLINE" }, asAgent);
  console.log("conversation complete");
}

main().then(() => process.exit(0), (err) => {
  console.error(err.stack || err);
  process.exit(1);
});
