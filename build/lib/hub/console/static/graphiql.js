// GraphiQL on this hub's /graphql, from vendored files (Strawberry's template, without the CDN).
// Put your key in the Headers tab: {"Authorization": "Bearer fh_..."}; subscriptions send the same
// headers as graphql-ws connection parameters, which is where the hub reads the credential.
"use strict";

const EXAMPLE_QUERY = `# Franchise Hub: GraphiQL, served by the hub itself (works offline).
#
# 1. Open the Headers tab below and paste: {"Authorization": "Bearer <your key or token>"}
# 2. Run (Ctrl-Enter). The Docs and Explorer panels list every type and field.
#
{
  viewer { role brandId storeId }
}
`;

const parameters = {};
for (const entry of window.location.search.slice(1).split("&")) {
  const eq = entry.indexOf("=");
  if (eq >= 0) {
    parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(entry.slice(eq + 1));
  }
}

function updateURL(data) {
  Object.assign(parameters, data);
  const search = Object.keys(parameters)
    .filter((key) => Boolean(parameters[key]))
    .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
    .join("&");
  history.replaceState(null, "", "?" + search);
}

const fetchURL = window.location.href.split("?")[0].split("#")[0];
const wsURL = new URL(fetchURL);
wsURL.protocol = wsURL.protocol === "https:" ? "wss:" : "ws:";

const fetcher = GraphiQL.createFetcher({ url: fetchURL, subscriptionUrl: wsURL.toString() });

function HubGraphiQL() {
  const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
  const [variables, setVariables] = React.useState(parameters.variables);
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  return React.createElement(GraphiQL, {
    fetcher,
    defaultEditorToolsVisibility: true,
    plugins: [explorer],
    query,
    variables,
    onEditQuery: (q) => {
      setQuery(q);
      updateURL({ q });
    },
    onEditVariables: (v) => {
      setVariables(v);
      updateURL({ variables: v });
    },
    inputValueDeprecation: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  });
}

ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(HubGraphiQL));
