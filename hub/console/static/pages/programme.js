// The brand's programme as it stands: earning rules and coupon templates (read-only lists).
import { html } from "../vendor/htm-preact.mjs";
import { fmt, gql } from "../api.js";
import { Loading, Table, nodes, useQuery } from "../ui.js";

const RULES = `query($b: ID!) {
  earnRules(brandId: $b, first: 100) {
    edges { node { id kind latest { version name active effectiveFrom } inForce { version } } }
  }
}`;
const COUPONS = `query($b: ID) {
  couponTemplates(brandId: $b, first: 100) {
    edges { node { id code name kind pointsPrice issued active validUntil } }
  }
}`;

export function Rules({ who }) {
  const [data, error] = useQuery(() => gql(RULES, { b: who.brandId }), [who.brandId]);
  const columns = [
    { label: "Rule", cell: (r) => r.latest.name },
    { label: "Kind", cell: (r) => fmt.kind(r.kind) },
    { label: "Version", num: true, cell: (r) => r.latest.version },
    { label: "In force", cell: (r) => (r.inForce ? `v${r.inForce.version}` : "no") },
    { label: "From", cell: (r) => fmt.time(r.latest.effectiveFrom) },
  ];
  return html`<section>
    <h2>Earning rules</h2>
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.earnRules)} empty="No rules: the brand's earn rate applies." testid="rules" />`}<//>
  </section>`;
}

export function Coupons({ who }) {
  const [data, error] = useQuery(() => gql(COUPONS, { b: who.brandId }), [who.brandId]);
  const columns = [
    { label: "Code", cell: (c) => c.code },
    { label: "Name", cell: (c) => c.name },
    { label: "Kind", cell: (c) => fmt.kind(c.kind) },
    { label: "Price (points)", num: true, cell: (c) => (c.pointsPrice == null ? "—" : fmt.int(c.pointsPrice)) },
    { label: "Issued", num: true, cell: (c) => fmt.int(c.issued) },
    { label: "Active", cell: (c) => (c.active ? "yes" : "no") },
  ];
  return html`<section>
    <h2>Coupons</h2>
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.couponTemplates)} empty="No coupon templates." testid="coupons" />`}<//>
  </section>`;
}
