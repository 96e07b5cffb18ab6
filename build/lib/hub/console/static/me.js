// /me: a member's own balances, pending and soon-expiring points and history, live. Opened with a member token in the URL's fragment
// (/me#token=...), which never reaches a server log; the token then moves to sessionStorage.
import { html, render, useEffect, useState } from "./vendor/htm-preact.mjs";
import { fmt, gql, subscribe } from "./api.js";
import { Failure, Table, nodes } from "./ui.js";

const TOKEN_KEY = "hub.memberToken";
const MINE = `{
  memberships(first: 50) {
    edges { node {
      id tier brand { name }
      points { available pending sequence }
      expiringPoints(withinDays: 90) { points expiresAt }
      history(first: 10) { edges { node { id delta balanceAfter createdAt transaction { kind store { name } } } } }
    } }
  }
}`;
const LIVE = `subscription { balanceChanged { membershipId sequence balance delta } }`;

function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", window.location.pathname); // out of the address bar and history
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function Me({ token }) {
  const [memberships, setMemberships] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    gql(MINE, {}, token).then((d) => setMemberships(nodes(d.memberships)), setError);
  }, [tick]);
  useEffect(
    () =>
      subscribe(
        LIVE,
        {},
        (d) => {
          const e = d.balanceChanged;
          // The balance at once from the event; history and pending points from a fresh read.
          setMemberships((list) =>
            list?.map((m) =>
              m.id === e.membershipId && Number(e.sequence) > Number(m.points.sequence)
                ? { ...m, points: { ...m.points, available: e.balance, sequence: e.sequence } }
                : m,
            ),
          );
          setTick((t) => t + 1);
        },
        setError,
        token,
      ),
    [token],
  );
  if (error) return html`<main><${Failure} error=${error} /><p>Ask the brand's app for a new link.</p></main>`;
  if (!memberships) return html`<main><p class="muted">Loading…</p></main>`;
  return html`<main class="me">
    <h1>My points</h1>
    ${memberships.length === 0 && html`<p class="muted">No memberships yet.</p>`}
    ${memberships.map((m) => html`<${Membership} m=${m} key=${m.id} />`)}
  </main>`;
}

function Membership({ m }) {
  const columns = [
    { label: "When", cell: (h) => fmt.time(h.createdAt) },
    { label: "What", cell: (h) => fmt.kind(h.transaction.kind) + (h.transaction.store ? ` · ${h.transaction.store.name}` : "") },
    { label: "Points", num: true, cell: (h) => fmt.signed(h.delta) },
  ];
  return html`<section class="card" data-testid="membership">
    <h2>${m.brand.name} <span class="muted">${m.tier}</span></h2>
    <div class="tiles">
      <div class="tile"><span>Available</span><strong data-testid="me-balance">${fmt.int(m.points.available)}</strong></div>
      <div class="tile"><span>Pending</span><strong>${fmt.int(m.points.pending)}</strong></div>
    </div>
    ${m.expiringPoints.map(
      (e) => html`<p class="expiring" data-testid="expiring">${fmt.int(e.points)} points expire on ${fmt.day(e.expiresAt)}</p>`,
    )}
    <${Table} columns=${columns} rows=${nodes(m.history)} empty="No points yet." />
  </section>`;
}

const token = takeToken();
render(
  token
    ? html`<${Me} token=${token} />`
    : html`<main><h1>My points</h1><p>Open this page from the link in the brand's app.</p></main>`,
  document.getElementById("app"),
);
