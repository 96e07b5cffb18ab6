// The HQ console: sign-in with an HQ or store key, then pages chosen by the URL's #hash.
import { html, render, useEffect, useState } from "./vendor/htm-preact.mjs";
import { gql, session } from "./api.js";
import { Failure } from "./ui.js";
import { Members, MemberDetail } from "./pages/members.js";
import { Activity } from "./pages/activity.js";
import { Stores } from "./pages/stores.js";
import { Keys } from "./pages/keys.js";
import { Rules, Coupons, Gifts } from "./pages/programme.js";
import { Dashboard } from "./pages/dashboard.js";
import { ChangeLog } from "./pages/changelog.js";
import { Partnerships } from "./pages/partnerships.js";

const VIEWER = `{ viewer { role brandId storeId } }`;
const BRAND = `query($id: ID!) { node(id: $id) { ... on Brand { id name timezone pointValue { points fen } } } }`;

// Pages, in the menu's order; `roles` limits a page to the keys whose role may use it.
const PAGES = [
  { path: "dashboard", label: "Dashboard", view: Dashboard, roles: ["BRAND"] },
  { path: "members", label: "Members", view: Members },
  { path: "activity", label: "Live activity", view: Activity, roles: ["BRAND"] },
  { path: "stores", label: "Stores", view: Stores },
  { path: "keys", label: "API keys", view: Keys, roles: ["BRAND"] },
  { path: "rules", label: "Earning rules", view: Rules },
  { path: "coupons", label: "Coupons", view: Coupons },
  { path: "gifts", label: "Gift catalog", view: Gifts },
  { path: "partnerships", label: "Partnerships", view: Partnerships },
  { path: "changes", label: "Change log", view: ChangeLog, roles: ["BRAND"] },
];

function route() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  return { page: parts[0] || "", arg: parts[1] ? decodeURIComponent(parts[1]) : null };
}

async function whoAmI(credential) {
  const { viewer } = await gql(VIEWER, {}, credential);
  if (!viewer || !viewer.brandId || !["BRAND", "STORE"].includes(viewer.role)) {
    throw new Error("Sign in with a brand HQ key or a store key.");
  }
  const { node: brand } = await gql(BRAND, { id: viewer.brandId }, credential);
  return { ...viewer, brand };
}

function SignIn({ onSignedIn }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await whoAmI(key.trim());
      session.set(key.trim());
      onSignedIn(who);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>Franchise Hub</h1>
    <form onSubmit=${submit} class="card">
      <label for="key">HQ or store API key</label>
      <input id="key" name="key" type="password" autocomplete="off" required placeholder="fh_…"
        value=${key} onInput=${(e) => setKey(e.target.value)} />
      <button type="submit" disabled=${busy}>Sign in</button>
      <p class="muted">The key stays in this browser tab only (sessionStorage) and goes when the tab closes.</p>
      <${Failure} error=${error} />
    </form>
  </main>`;
}

function Shell({ who, onSignOut }) {
  const [where, setWhere] = useState(route());
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    const onHash = () => {
      setWhere(route());
      setMenuOpen(false);
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  const pages = PAGES.filter((p) => !p.roles || p.roles.includes(who.role));
  const current = pages.find((p) => p.path === where.page) || pages[0];
  let body;
  if (current.path === "members" && where.arg) body = html`<${MemberDetail} who=${who} id=${where.arg} />`;
  else if (current.path === "partnerships") body = html`<${Partnerships} who=${who} id=${where.arg} />`;
  else body = html`<${current.view} who=${who} />`;
  return html`<div class="shell">
    <header>
      <button class="menu-toggle" aria-label="Menu" onClick=${() => setMenuOpen(!menuOpen)}>☰</button>
      <strong class="brand-name" data-testid="brand-name">${who.brand.name}</strong>
      <span class="muted role">${who.role === "BRAND" ? "HQ" : "store"}</span>
      <button class="link" onClick=${onSignOut}>Sign out</button>
    </header>
    <nav class=${menuOpen ? "open" : ""}>
      ${pages.map(
        (p) => html`<a href=${`#/${p.path}`} class=${p === current ? "active" : ""}>${p.label}</a>`,
      )}
      <a href="/graphql" target="_blank" rel="noopener">GraphiQL ↗</a>
    </nav>
    <main>${body}</main>
  </div>`;
}

function App() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.get()));
  useEffect(() => {
    const saved = session.get();
    if (!saved) return;
    whoAmI(saved).then(setWho, () => session.clear()).finally(() => setChecking(false));
  }, []);
  if (checking) return html`<p class="muted">Loading…</p>`;
  if (!who) return html`<${SignIn} onSignedIn=${setWho} />`;
  const signOut = () => {
    session.clear();
    setWho(null);
    window.location.hash = "";
  };
  return html`<${Shell} who=${who} onSignOut=${signOut} />`;
}

render(html`<${App} />`, document.getElementById("app"));
