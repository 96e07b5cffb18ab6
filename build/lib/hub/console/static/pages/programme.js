// The brand's programme as it stands: earning rules, coupon templates, gift catalog (read-only lists).
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

const GIFTS = `query($b: ID) {
  giftItems(brandId: $b, first: 100) {
    edges { node { id code name pointsPrice cashFen stock ordered active validUntil } }
  }
}`;

export function Gifts({ who }) {
  const [data, error] = useQuery(() => gql(GIFTS, { b: who.brandId }), [who.brandId]);
  const columns = [
    { label: "Code", cell: (g) => g.code },
    { label: "Name", cell: (g) => g.name },
    { label: "Points", num: true, cell: (g) => fmt.int(g.pointsPrice) },
    { label: "Cash", num: true, cell: (g) => (Number(g.cashFen) ? fmt.yuan(g.cashFen) : "—") },
    { label: "Stock", num: true, cell: (g) => (g.stock == null ? "unlimited" : fmt.int(g.stock)) },
    { label: "Ordered", num: true, cell: (g) => fmt.int(g.ordered) },
    { label: "Active", cell: (g) => (g.active ? "yes" : "no") },
  ];
  return html`<section>
    <h2>Gift catalog</h2>
    <${Loading} data=${data} error=${error}>${() =>
      html`<${Table} columns=${columns} rows=${nodes(data.giftItems)} empty="No gifts in the catalog." testid="gifts" />`}<//>
  </section>`;
}

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
