// Partnerships the brand is one side of, and (HQ) their settlement statements.
import { html } from "../vendor/htm-preact.mjs";
import { fmt, gql } from "../api.js";
import { Loading, Table, nodes, useQuery } from "../ui.js";

const PARTNERSHIPS = `query($b: ID) {
  partnerships(brandId: $b, first: 100) {
    edges { node { id name status currentVersion createdAt pointsBrand { name } offerBrand { name }
      terms { period validFrom validUntil } } }
  }
}`;
const STATEMENTS = `query($p: ID!) {
  partnershipStatements(partnershipId: $p, first: 50) {
    edges { node { id period periodStart periodEnd status closedAt settledAt paymentReference
      totals { lines points fen } } }
  }
}`;
const NAME = `query($p: ID!) { node(id: $p) { ... on Partnership { name pointsBrand { name } offerBrand { name } } } }`;

export function Partnerships({ who, id }) {
  if (id) return html`<${Statements} id=${id} />`;
  const [data, error] = useQuery(() => gql(PARTNERSHIPS, { b: who.brandId }), [who.brandId]);
  const columns = [
    {
      label: "Partnership",
      cell: (p) =>
        who.role === "BRAND" ? html`<a href=${`#/partnerships/${encodeURIComponent(p.id)}`}>${p.name}</a>` : p.name,
    },
    { label: "Status", cell: (p) => fmt.kind(p.status) },
    { label: "Points of", cell: (p) => p.pointsBrand.name },
    { label: "Offers by", cell: (p) => p.offerBrand.name },
    { label: "Terms", cell: (p) => (p.currentVersion ? `v${p.currentVersion}, ${fmt.kind(p.terms?.period)}` : "none accepted") },
    { label: "Since", cell: (p) => fmt.time(p.createdAt) },
  ];
  return html`<section>
    <h2>Partnerships</h2>
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.partnerships)} empty="No partnerships." testid="partnerships" />`}<//>
  </section>`;
}

function Statements({ id }) {
  const [data, error] = useQuery(
    () => Promise.all([gql(NAME, { p: id }), gql(STATEMENTS, { p: id })]).then(([n, s]) => ({ ...n, ...s })),
    [id],
  );
  const columns = [
    { label: "From", cell: (s) => fmt.time(s.periodStart) },
    { label: "To", cell: (s) => fmt.time(s.periodEnd) },
    { label: "Status", cell: (s) => fmt.kind(s.status) },
    { label: "Lines", num: true, cell: (s) => fmt.int(s.totals.lines) },
    { label: "Points", num: true, cell: (s) => fmt.int(s.totals.points) },
    { label: "Amount", num: true, cell: (s) => fmt.yuan(s.totals.fen) },
    { label: "Settled", cell: (s) => (s.settledAt ? `${fmt.time(s.settledAt)} ${s.paymentReference}` : "—") },
  ];
  return html`<section>
    <p><a href="#/partnerships">← Partnerships</a></p>
    <${Loading} data=${data} error=${error}>${() => html`
      <h2>${data.node?.name ?? "Partnership"} — statements</h2>
      <${Table} columns=${columns} rows=${nodes(data.partnershipStatements)} empty="No statements yet." testid="statements" />`}<//>
  </section>`;
}
