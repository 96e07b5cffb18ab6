// The HQ dashboard: what the brand owes (liability), the last 30 brand-local days of points issued and
// redeemed and of sales, members active and lapsed, the top members; from the `reports` query.
import { html, useEffect, useRef, useState } from "../vendor/htm-preact.mjs";
import uPlot from "../vendor/uPlot.esm.js";
import { downloadCsv, fmt, gql } from "../api.js";
import { Failure, Loading, Table, useQuery } from "../ui.js";

const DAYS = 30;
const REPORTS = `query($b: ID!, $from: Date!, $to: Date!) {
  reports(brandId: $b) {
    liability {
      points { available pending total valueFen }
      byStore { available pending valueFen store { name } }
    }
    activity(from: $from, to: $to, period: DAY) { start issued redeemed expired adjusted purchases salesFen }
    members(from: $from, to: $to) { total enrolled active lapsed }
    topMembers(by: SPEND, first: 5) { phone tier points lifetimeSpendFen membership { id } }
  }
}`;

/** Today in the brand's time zone, as YYYY-MM-DD, and the day `days` before it. */
function range(timezone, days) {
  const day = (d) => new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(d);
  const to = day(new Date());
  const from = new Date(`${to}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - (days - 1));
  return { from: from.toISOString().slice(0, 10), to };
}

const seconds = (isoDay) => Date.parse(`${isoDay}T00:00:00Z`) / 1000;

function Chart({ title, series, x, testid }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(280, el.clientWidth - 16),
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // the x values are brand-local days
      scales: { x: { time: true } },
      axes: [{}, { size: 60 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, fill: s.fill }))],
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], el);
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth - 16), height: 220 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [x, series]);
  return html`<figure class="chart" data-testid=${testid}><figcaption>${title}</figcaption><div ref=${box}></div></figure>`;
}

export function Dashboard({ who }) {
  const days = range(who.brand.timezone, DAYS);
  const [data, error] = useQuery(() => gql(REPORTS, { b: who.brandId, ...days }), [who.brandId, days.to]);
  const [exportError, setExportError] = useState(null);
  const csv = (name, params) => () => downloadCsv(name, { brandId: who.brandId, ...params }).catch(setExportError);
  return html`<section>
    <h2>Dashboard</h2>
    <div class="row">
      <span class="muted">Export CSV:</span>
      <button class="link" onClick=${csv("activity", { ...days, period: "DAY", byStore: "true" })}>activity by store</button>
      <button class="link" onClick=${csv("liability", {})}>liability</button>
      <button class="link" onClick=${csv("members", days)}>members</button>
    </div>
    <${Failure} error=${exportError} />
    <${Loading} data=${data} error=${error}>${() => html`<${Figures} r=${data.reports} days=${days} />`}<//>
  </section>`;
}

function Figures({ r, days }) {
  const rows = r.activity;
  const x = rows.map((a) => seconds(a.start));
  const sum = (key) => rows.reduce((t, a) => t + Number(a[key]), 0);
  const issued = sum("issued");
  const redeemed = sum("redeemed");
  const points = r.liability.points;
  const storeColumns = [
    { label: "Store of issue", cell: (s) => s.store?.name ?? "HQ, grants, check-ins" },
    { label: "Available", num: true, cell: (s) => fmt.int(s.available) },
    { label: "Pending", num: true, cell: (s) => fmt.int(s.pending) },
    { label: "Value", num: true, cell: (s) => fmt.yuan(s.valueFen) },
  ];
  const topColumns = [
    { label: "Member", cell: (m) => html`<a href=${`#/members/${encodeURIComponent(m.membership.id)}`}>${m.phone}</a>` },
    { label: "Tier", cell: (m) => m.tier },
    { label: "Spend", num: true, cell: (m) => fmt.yuan(m.lifetimeSpendFen) },
    { label: "Points", num: true, cell: (m) => fmt.int(m.points) },
  ];
  return html`
    <p class="muted">Last ${DAYS} days in the brand's time zone: ${days.from} to ${days.to}.</p>
    <div class="tiles" data-testid="dashboard-tiles">
      <div class="tile"><span>Points outstanding</span><strong>${fmt.int(points.total)}</strong>
        <small class="muted">${fmt.int(points.pending)} pending</small></div>
      <div class="tile"><span>Their value</span><strong>${fmt.yuan(points.valueFen)}</strong></div>
      <div class="tile"><span>Redemption rate</span>
        <strong>${issued ? `${((100 * redeemed) / issued).toFixed(1)} %` : "—"}</strong>
        <small class="muted">${fmt.int(redeemed)} of ${fmt.int(issued)} points issued</small></div>
      <div class="tile"><span>Sales</span><strong>${fmt.yuan(sum("salesFen"))}</strong>
        <small class="muted">${fmt.int(sum("purchases"))} purchases</small></div>
      <div class="tile"><span>Members</span><strong>${fmt.int(r.members.total)}</strong>
        <small class="muted">${`${fmt.int(r.members.enrolled)} new · ${fmt.int(r.members.active)} active · ${fmt.int(r.members.lapsed)} lapsed`}</small></div>
    </div>
    <${Chart} title="Points issued and redeemed per day" x=${x} testid="chart-points" series=${[
      { label: "issued", color: "#c2410c", values: rows.map((a) => Number(a.issued)) },
      { label: "redeemed", color: "#1d4ed8", values: rows.map((a) => Number(a.redeemed)) },
    ]} />
    <${Chart} title="Sales per day (¥)" x=${x} testid="chart-sales" series=${[
      { label: "sales", color: "#067647", fill: "rgba(6,118,71,0.1)", values: rows.map((a) => Number(a.salesFen) / 100) },
    ]} />
    <h3>Points outstanding by store of issue</h3>
    <${Table} columns=${storeColumns} rows=${r.liability.byStore} testid="liability-by-store" />
    <h3>Top members by spend</h3>
    <${Table} columns=${topColumns} rows=${r.topMembers} testid="top-members" />`;
}
