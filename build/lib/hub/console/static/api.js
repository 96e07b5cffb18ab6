// GraphQL for the console and /me: queries over fetch, subscriptions over graphql-ws (vendored,
// global `graphqlWs`). The credential lives in sessionStorage: it goes when the tab closes.

const STORE_KEY = "hub.credential";

export const session = {
  get: () => sessionStorage.getItem(STORE_KEY),
  set: (credential) => sessionStorage.setItem(STORE_KEY, credential),
  clear: () => {
    sessionStorage.removeItem(STORE_KEY);
    closeSocket();
  },
};

export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

/** Run a query or mutation; resolves to `data`, rejects with GraphQLError on any error. */
export async function gql(query, variables = {}, credential = session.get()) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (credential) headers.authorization = `Bearer ${credential}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError([{ message: `The hub answered ${response.status}.` }]);
  }
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

/** Run a mutation `name(input:)`: resolves to its payload; userErrors reject as a GraphQLError. */
export async function mutate(name, inputType, input, fields) {
  const query = `mutation($i: ${inputType}!) { ${name}(input: $i) { userErrors { code field message } ${fields} } }`;
  const payload = (await gql(query, { i: input }))[name];
  if (payload.userErrors.length) {
    throw new GraphQLError(payload.userErrors.map((e) => ({ message: e.message, extensions: { code: e.code } })));
  }
  return payload;
}

let socket = null;
let socketCredential = null;

function client(credential) {
  if (socket && socketCredential === credential) return socket;
  closeSocket();
  const url = new URL("/graphql", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  socketCredential = credential;
  socket = graphqlWs.createClient({
    url: url.toString(),
    connectionParams: { Authorization: `Bearer ${credential}` },
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
  });
  return socket;
}

function closeSocket() {
  if (socket) socket.dispose();
  socket = null;
  socketCredential = null;
}

/**
 * Subscribe; `onNext(data)` for every event, `onError(error)` when the hub refuses or ends it.
 * Returns a function that unsubscribes. The socket is shared and reconnects by itself.
 */
export function subscribe(query, variables, onNext, onError = () => {}, credential = session.get()) {
  return client(credential).subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(new GraphQLError(result.errors));
        else onNext(result.data);
      },
      error: (error) => onError(error instanceof Error ? error : new Error("The live connection failed.")),
      complete: () => {},
    },
  );
}

/** Points and money are integers (fen); show them with separators, money in yuan. */
export const fmt = {
  int: (n) => Number(n ?? 0).toLocaleString("en-US"),
  signed: (n) => (Number(n) > 0 ? "+" : "") + Number(n).toLocaleString("en-US"),
  yuan: (fen) => "¥" + (Number(fen ?? 0) / 100).toLocaleString("en-US", { minimumFractionDigits: 2 }),
  time: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
  day: (iso) => (iso ? new Date(iso).toLocaleDateString() : "—"),
  kind: (k) => String(k ?? "").toLowerCase().replace(/_/g, " "),
};

/** Download a CSV export (/reports/<name>.csv) with the credential in the header, as a file. */
export async function downloadCsv(name, params, credential = session.get()) {
  const url = new URL(`/reports/${name}.csv`, window.location.href);
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { authorization: `Bearer ${credential}` } });
  if (!response.ok) {
    let message = `The export answered ${response.status}.`;
    try {
      const body = await response.json();
      message = body.errors?.[0]?.message ?? message;
    } catch {}
    throw new Error(message);
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `${name}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
