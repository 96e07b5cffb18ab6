// Small shared pieces of the console's and /me's pages.
import { html, useEffect, useState } from "./vendor/htm-preact.mjs";

/** Load once per change of `deps`: [data, error, reload]. */
export function useQuery(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, error: null }));
    load().then(
      (data) => live && setState({ data, error: null }),
      (error) => live && setState({ data: null, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [state.data, state.error, () => setTick((t) => t + 1)];
}

export function Failure({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.code ? `${error.code}: ` : ""}${error.message}</p>`;
}

export function Loading({ data, error, children }) {
  if (error) return html`<${Failure} error=${error} />`;
  if (data == null) return html`<p class="muted">Loading…</p>`;
  return children();
}

export function Table({ columns, rows, empty = "Nothing yet.", testid }) {
  if (!rows.length) return html`<p class="muted">${empty}</p>`;
  return html`<div class="table-wrap"><table data-testid=${testid}>
    <thead><tr>${columns.map((c) => html`<th class=${c.num ? "num" : ""}>${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map(
      (r, i) => html`<tr key=${r.id ?? i}>${columns.map(
        (c) => html`<td class=${c.num ? "num" : ""} data-label=${c.label}>${c.cell(r)}</td>`,
      )}</tr>`,
    )}</tbody></table></div>`;
}

export const nodes = (connection) => (connection?.edges ?? []).map((e) => e.node);
