// HQ's change log: who changed the brand's configuration or adjusted points, newest first (changeLog).
import { html, useState } from "../vendor/htm-preact.mjs";
import { fmt, gql } from "../api.js";
import { Loading, Table, nodes, useQuery } from "../ui.js";

const CHANGES = `query($b: ID, $after: String) {
  changeLog(brandId: $b, first: 50, after: $after) {
    edges { node { number createdAt action actorRole subjectType after } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export function ChangeLog({ who }) {
  const [after, setAfter] = useState([null]);
  const [data, error] = useQuery(
    () => gql(CHANGES, { b: who.brandId, after: after[after.length - 1] }),
    [who.brandId, after.length],
  );
  const columns = [
    { label: "#", num: true, cell: (c) => c.number },
    { label: "When", cell: (c) => fmt.time(c.createdAt) },
    { label: "What", cell: (c) => c.action },
    { label: "By", cell: (c) => fmt.kind(c.actorRole) },
    { label: "Subject", cell: (c) => c.subjectType },
    { label: "After", cell: (c) => c.after == null ? "—" : html`<code class="json" title=${JSON.stringify(c.after)}>${JSON.stringify(c.after)}</code>` },
  ];
  return html`<section>
    <h2>Change log</h2>
    <${Loading} data=${data} error=${error}>${() => html`
      <${Table} columns=${columns} rows=${nodes(data.changeLog).map((c) => ({ ...c, id: c.number }))} testid="changes" />
      <div class="row">
        ${after.length > 1 && html`<button class="link" onClick=${() => setAfter(after.slice(0, -1))}>← Newer</button>`}
        ${data.changeLog.pageInfo.hasNextPage &&
        html`<button class="link" onClick=${() => setAfter([...after, data.changeLog.pageInfo.endCursor])}>Older →</button>`}
      </div>`}<//>
  </section>`;
}
