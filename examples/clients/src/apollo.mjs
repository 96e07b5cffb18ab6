// The README's Apollo Client recipes, run against a hub (tests/api/test_client_recipes.py starts one).
//
// Environment: HUB_HTTP_URL (http://host:port/graphql), HUB_WS_URL (ws://host:port/graphql),
// MEMBER_TOKEN (a member token), STORE_KEY (a store key of the member's brand), MEMBERSHIP_ID (the
// membership, with at least three history entries). Prints one JSON line of what it saw; exits 1 on
// any failed check.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition, relayStylePagination } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const { HUB_HTTP_URL, HUB_WS_URL, MEMBER_TOKEN, STORE_KEY, MEMBERSHIP_ID } = process.env;

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

// Recipe 1 — possibleTypes for Node (and every other interface or union), read from the server once,
// so that fragments on `node(id:)` match in the cache.
async function fetchPossibleTypes(url, token) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: "{ __schema { types { kind name possibleTypes { name } } } }",
    }),
  });
  const { data } = await response.json();
  const possibleTypes = {};
  for (const type of data.__schema.types) {
    if (type.possibleTypes) possibleTypes[type.name] = type.possibleTypes.map((t) => t.name);
  }
  return possibleTypes;
}

// Recipe 2 — type policies: every connection field pages with relayStylePagination (key arguments
// other than first/after go in its argument, e.g. ["status"] for Membership.coupons).
function makeCache(possibleTypes) {
  return new InMemoryCache({
    possibleTypes,
    typePolicies: {
      Query: { fields: { brands: relayStylePagination() } },
      Membership: {
        fields: {
          history: relayStylePagination(),
          coupons: relayStylePagination(["status"]),
        },
      },
    },
  });
}

// Recipe 3 — one client for queries, mutations (HTTP) and subscriptions (graphql-ws), the credential
// in the Authorization header and in graphql-ws's connectionParams.
function makeClient(token, possibleTypes) {
  const http = new HttpLink({ uri: HUB_HTTP_URL, headers: { authorization: `Bearer ${token}` } });
  const ws = new GraphQLWsLink(
    createClient({
      url: HUB_WS_URL,
      webSocketImpl: WebSocket, // Node 20 has no WebSocket of its own; browsers leave this out
      connectionParams: { Authorization: `Bearer ${token}` },
      lazy: true,
    }),
  );
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    ws,
    http,
  );
  return { client: new ApolloClient({ link, cache: makeCache(possibleTypes) }), ws };
}

const HISTORY = gql`
  query MemberHistory($id: ID!, $first: Int!, $after: String) {
    node(id: $id) {
      ... on Membership {
        id
        points { available sequence }
        history(first: $first, after: $after) {
          edges { cursor node { id sequence delta balanceAfter } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        }
      }
    }
  }
`;

const BALANCE_CHANGED = gql`
  subscription BalanceChanged($membershipId: ID, $afterSequence: BigInt) {
    balanceChanged(membershipId: $membershipId, afterSequence: $afterSequence) {
      membershipId sequence balance delta
      transaction { transactionId kind }
    }
  }
`;

const PURCHASE = gql`
  mutation Purchase($input: RecordPurchaseInput!) {
    recordPurchase(input: $input) {
      userErrors { code message }
      transaction { id }
    }
  }
`;

async function main() {
  const possibleTypes = await fetchPossibleTypes(HUB_HTTP_URL, MEMBER_TOKEN);
  check(possibleTypes.Node?.includes("Membership") && possibleTypes.Node.includes("LedgerEntry"), "possibleTypes");
  const member = makeClient(MEMBER_TOKEN, possibleTypes);
  const store = makeClient(STORE_KEY, possibleTypes);
  const seen = {};
  try {
    // Two pages; relayStylePagination merges them into one list in the cache.
    const first = await member.client.query({ query: HISTORY, variables: { id: MEMBERSHIP_ID, first: 2 } });
    const page1 = first.data.node.history;
    check(page1.edges.length === 2 && page1.pageInfo.hasNextPage, "first page");
    const more = { id: MEMBERSHIP_ID, first: 2, after: page1.pageInfo.endCursor };
    const second = await member.client.query({ query: HISTORY, variables: more, fetchPolicy: "network-only" });
    // A query answers from the cache field, which now holds both pages (and their joint pageInfo).
    const merged = member.client.readQuery({ query: HISTORY, variables: { id: MEMBERSHIP_ID, first: 2 } });
    const sequences = merged.node.history.edges.map((e) => e.node.sequence);
    seen.mergedSequences = sequences;
    seen.mergedPageInfo = merged.node.history.pageInfo;
    check(sequences.length === new Set(sequences).size, "merged pages without duplicates");
    check(second.data.node.history.edges.length === sequences.length, "the second answer is the merged list");

    // The fragment on node(id:) was normalised under Membership:<id>, thanks to possibleTypes.
    const cached = member.client.cache.readFragment({
      id: member.client.cache.identify({ __typename: "Membership", id: MEMBERSHIP_ID }),
      fragment: gql`fragment Balance on Membership { points { available sequence } }`,
    });
    check(cached?.points?.available === first.data.node.points.available, "normalised membership");
    const from = cached.points.sequence;

    // Live: subscribe after the sequence we have (nothing is missed between reading and subscribing),
    // then a store records a purchase.
    const event = new Promise((resolve, reject) => {
      const subscription = member.client
        .subscribe({ query: BALANCE_CHANGED, variables: { membershipId: MEMBERSHIP_ID, afterSequence: from } })
        .subscribe({
          next: ({ data, error }) => {
            subscription.unsubscribe();
            error ? reject(error) : resolve(data.balanceChanged);
          },
          error: reject,
        });
    });
    const bought = await store.client.mutate({
      mutation: PURCHASE,
      variables: {
        input: { membershipId: MEMBERSHIP_ID, amountFen: 4200, idempotencyKey: `apollo-${Date.now()}` },
      },
    });
    const purchase = bought.data.recordPurchase;
    check(purchase.userErrors.length === 0, JSON.stringify(purchase.userErrors));
    const changed = await Promise.race([
      event,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no event within 10 s")), 10_000)),
    ]);
    check(changed.sequence === from + 1, "the next sequence");
    check(changed.transaction.transactionId === purchase.transaction.id, "the purchase's transaction");
    seen.event = changed;
    console.log(JSON.stringify(seen));
  } finally {
    await member.ws.client.dispose();
    await store.ws.client.dispose();
  }
}

// Exit when done: idle keep-alive connections of fetch would hold the process for seconds.
main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
