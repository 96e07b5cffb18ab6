// API keys of the brand: list, create (the secret is shown once), revoke with a confirmation.
import { html, useState } from "../vendor/htm-preact.mjs";
import { fmt, gql, mutate } from "../api.js";
import { Failure, Loading, Table, nodes, useQuery } from "../ui.js";

const KEYS = `query($b: ID) {
  apiKeys(brandId: $b, includeRevoked: true, first: 100) {
    edges { node { id role label prefix state createdAt lastUsedAt store { name } } }
  }
}`;
const STORES = `query($b: ID!) { node(id: $b) { ... on Brand { stores(first: 100) { edges { node { id name } } } } } }`;

export function Keys({ who }) {
  const [data, error, reload] = useQuery(() => gql(KEYS, { b: who.brandId }), [who.brandId]);
  const [revoking, setRevoking] = useState(null);
  const [revokeError, setRevokeError] = useState(null);
  const revoke = async () => {
    setRevokeError(null);
    try {
      await mutate("revokeApiKey", "RevokeApiKeyInput", { id: revoking.id }, "apiKey { id }");
      reload();
    } catch (e) {
      setRevokeError(e);
    }
    setRevoking(null);
  };
  const columns = [
    { label: "Key", cell: (k) => html`<code>${k.prefix}…</code>` },
    { label: "Role", cell: (k) => (k.role === "BRAND" ? "HQ" : "store") },
    { label: "Store", cell: (k) => k.store?.name ?? "—" },
    { label: "Label", cell: (k) => k.label },
    { label: "State", cell: (k) => fmt.kind(k.state) },
    { label: "Last used", cell: (k) => fmt.time(k.lastUsedAt) },
    {
      label: "",
      cell: (k) =>
        k.state === "ACTIVE" && html`<button class="link danger" onClick=${() => setRevoking(k)}>Revoke…</button>`,
    },
  ];
  return html`<section>
    <h2>API keys</h2>
    ${revoking &&
    html`<div class="card confirm" role="alertdialog" aria-label="Confirm revoking">
      <p>Revoke <code>${revoking.prefix}…</code> (${revoking.label || "no label"})? Whoever uses it is refused at once.</p>
      <button class="danger" onClick=${revoke}>Revoke</button>
      <button class="link" onClick=${() => setRevoking(null)}>Cancel</button>
    </div>`}
    <${Failure} error=${revokeError} />
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.apiKeys)} testid="keys" />`}<//>
    <${NewKey} who=${who} onDone=${reload} />
  </section>`;
}

function NewKey({ who, onDone }) {
  const [stores] = useQuery(() => gql(STORES, { b: who.brandId }), [who.brandId]);
  const [form, setForm] = useState({ role: "STORE", storeId: "", label: "" });
  const [secret, setSecret] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    const input = { role: form.role, label: form.label };
    if (form.role === "STORE") input.storeId = form.storeId || nodes(stores?.node?.stores)[0]?.id;
    else input.brandId = who.brandId;
    try {
      const out = await mutate("createApiKey", "CreateApiKeyInput", input, "secret apiKey { id }");
      setSecret(out.secret);
      setForm({ ...form, label: "" });
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return html`<form class="card row" onSubmit=${submit}>
    <h3>Create a key</h3>
    <label for="key-role">Role</label>
    <select id="key-role" value=${form.role} onChange=${(e) => setForm({ ...form, role: e.target.value })}>
      <option value="STORE">store</option><option value="BRAND">HQ</option>
    </select>
    ${form.role === "STORE" &&
    html`<label for="key-store">Store</label>
      <select id="key-store" value=${form.storeId} onChange=${(e) => setForm({ ...form, storeId: e.target.value })}>
        ${nodes(stores?.node?.stores).map((s) => html`<option value=${s.id}>${s.name}</option>`)}
      </select>`}
    <label for="key-label">Label</label>
    <input id="key-label" value=${form.label} onInput=${(e) => setForm({ ...form, label: e.target.value })} />
    <button type="submit">Create</button>
    <${Failure} error=${error} />
    ${secret &&
    html`<p class="ok" role="status">The new key — copy it now, it is not shown again:
      <code class="secret" data-testid="new-secret">${secret}</code></p>`}
  </form>`;
}
