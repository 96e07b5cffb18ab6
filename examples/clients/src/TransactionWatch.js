// Relay: a transaction in the store, and balance events live. The event's transaction carries a
// transactionId, not an id: were it the LedgerTransaction's id, Relay would normalise the event's
// transaction into the same record and re-type it (src/relay.mjs checks it does not). Compiled only,
// like MemberHistory.js.
import { graphql } from "react-relay";

export const TransactionQuery = graphql`
  query TransactionWatchQuery($id: ID!) {
    node(id: $id) {
      __typename
      ... on LedgerTransaction { kind reason }
    }
  }
`;

export const BalanceSubscription = graphql`
  subscription TransactionWatchSubscription($membershipId: ID!, $afterSequence: BigInt) {
    balanceChanged(membershipId: $membershipId, afterSequence: $afterSequence) {
      sequence delta
      transaction { transactionId kind }
    }
  }
`;
