// The brand's stores, and (HQ) opening a new one.
import { html, useState } from "../vendor/htm-preact.mjs";
import { gql, mutate } from "../api.js";
import { Failure, Loading, Table, nodes, useQuery } from "../ui.js";

const STORES = `query($b: ID!) { node(id: $b) { ... on Brand { stores(first: 100) { edges { node { id name code isFranchise } } } } } }`;

export function Stores({ who }) {
  const [data, error, reload] = useQuery(() => gql(STORES, { b: who.brandId }), [who.brandId]);
  const columns = [
    { label: "Code", cell: (s) => s.code },
    { label: "Name", cell: (s) => s.name },
    { label: "Kind", cell: (s) => (s.isFranchise ? "franchise" : "own") },
  ];
  return html`<section>
    <h2>Stores</h2>
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.node.stores)} testid="stores" />`}<//>
    ${who.role === "BRAND" && html`<${NewStore} brandId=${who.brandId} onDone=${reload} />`}
  </section>`;
}

function NewStore({ brandId, onDone }) {
  const [form, setForm] = useState({ name: "", code: "", isFranchise: false });
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      await mutate("createStore", "CreateStoreInput", { brandId, ...form }, "store { id }");
      setForm({ name: "", code: "", isFranchise: false });
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return html`<form class="card row" onSubmit=${submit}>
    <h3>Open a store</h3>
    <label for="store-name">Name</label>
    <input id="store-name" required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
    <label for="store-code">Code</label>
    <input id="store-code" required value=${form.code} onInput=${(e) => setForm({ ...form, code: e.target.value })} />
    <label><input type="checkbox" checked=${form.isFranchise}
      onChange=${(e) => setForm({ ...form, isFranchise: e.target.checked })} /> franchise</label>
    <button type="submit">Open</button>
    <${Failure} error=${error} />
  </form>`;
}
