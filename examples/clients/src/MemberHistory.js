// Relay: a membership's history as a paginated fragment. relay-compiler accepts @connection only when
// PageInfo has all four Relay fields, and @refetchable only on a Node type that node(id:) fetches.
// Compiled, not run here (a React app would import it; react-relay is not installed): src/relay.mjs
// runs the artifacts relay-compiler writes to src/__generated__.
import { graphql } from "react-relay";

export const MemberHistoryFragment = graphql`
  fragment MemberHistory_membership on Membership
  @refetchable(queryName: "MemberHistoryPaginationQuery")
  @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" }) {
    tier
    points { available }
    history(first: $count, after: $cursor) @connection(key: "MemberHistory_history") {
      edges {
        node { sequence delta balanceAfter createdAt transaction { kind } }
      }
    }
  }
`;

export const MemberPageQuery = graphql`
  query MemberHistoryQuery($id: ID!) {
    node(id: $id) { ...MemberHistory_membership @alias }
  }
`;
