// Relay's runtime against a hub, with the artifacts relay-compiler made from src/*.js
// (tests/clients/test_recipes.py runs it). Same environment as src/apollo.mjs. Prints one JSON line.
import relay from "relay-runtime";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import MemberHistoryQuery from "./__generated__/MemberHistoryQuery.graphql.js";
import TransactionQuery from "./__generated__/TransactionWatchQuery.graphql.js";
import BalanceSubscription from "./__generated__/TransactionWatchSubscription.graphql.js";

const { Environment, Network, Observable, RecordSource, Store, fetchQuery, requestSubscription } = relay;
const { HUB_HTTP_URL, HUB_WS_URL, MEMBER_TOKEN, STORE_KEY, MEMBERSHIP_ID } = process.env;

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function post(token, query, variables) {
  const response = await fetch(HUB_HTTP_URL, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

// The network layer: queries over HTTP, subscriptions over graphql-ws with the token in connectionParams.
const ws = createClient({
  url: HUB_WS_URL,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${MEMBER_TOKEN}` },
});
const network = Network.create(
  (params, variables) => post(MEMBER_TOKEN, params.text, variables),
  (params, variables) =>
    Observable.create((sink) => ws.subscribe({ operationName: params.name, query: params.text, variables }, sink)),
);
const environment = new Environment({ network, store: new Store(new RecordSource()) });
const records = () => environment.getStore().getSource();

async function main() {
  const seen = {};
  // A Node fetched through node(id:) with a @refetchable fragment and a @connection.
  await fetchQuery(environment, MemberHistoryQuery, { id: MEMBERSHIP_ID }).toPromise();
  const membership = records().get(MEMBERSHIP_ID);
  check(membership?.__typename === "Membership", "the membership record");
  seen.connectionRecords = records()
    .getRecordIDs()
    .filter((id) => id.includes("__MemberHistory_history_connection")).length;

  // A purchase, and its transaction in the store.
  const before = await post(MEMBER_TOKEN, "query($id: ID!) { node(id: $id) { ... on Membership { points { sequence } } } }", {
    id: MEMBERSHIP_ID,
  });
  const from = before.data.node.points.sequence;
  const bought = await post(
    STORE_KEY,
    "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { userErrors { code } transaction { id } } }",
    { i: { membershipId: MEMBERSHIP_ID, amountFen: 2500, idempotencyKey: `relay-${Date.now()}` } },
  );
  check(bought.data.recordPurchase.userErrors.length === 0, "the purchase");
  const transactionId = bought.data.recordPurchase.transaction.id;
  await fetchQuery(environment, TransactionQuery, { id: transactionId }).toPromise();
  check(records().get(transactionId)?.__typename === "LedgerTransaction", "the transaction record");

  // Its balance event (replayed from `from`) lands in the same store and leaves the transaction alone.
  const event = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no event within 10 s")), 10_000);
    const subscription = requestSubscription(environment, {
      subscription: BalanceSubscription,
      variables: { membershipId: MEMBERSHIP_ID, afterSequence: from },
      onNext: (response) => {
        clearTimeout(timer);
        subscription.dispose();
        resolve(response.balanceChanged);
      },
      onError: reject,
    });
  });
  check(event.transaction.transactionId === transactionId, "the event names the purchase's transaction");
  const record = records().get(transactionId);
  check(record.__typename === "LedgerTransaction" && record.reason !== undefined, "the transaction record survives");
  seen.event = event;
  seen.transactionRecordType = record.__typename;
  console.log(JSON.stringify(seen));
  await ws.dispose();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
