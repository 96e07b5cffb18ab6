// Members: search by phone, a page of the brand's memberships, and one member's detail with the
// balance live (balanceChanged), history, and an HQ points adjustment behind a confirmation step.
import { html, useEffect, useState } from "../vendor/htm-preact.mjs";
import { downloadCsv, fmt, gql, mutate, subscribe } from "../api.js";
import { Failure, Loading, Table, nodes, useQuery } from "../ui.js";

const SEARCH = `query($p: String!) { memberByPhone(phone: $p) { id } }`;
const LIST = `query($b: ID, $after: String) {
  memberships(brandId: $b, first: 20, after: $after) {
    edges { node { id phone tier points { available } lastPurchaseAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
// HQ's member list (reports): masked phones unless the key may see them, one statement per page.
const HQ_LIST = `query($b: ID!, $order: MemberListOrder!, $filter: MemberListFilter, $after: String) {
  reports(brandId: $b) {
    memberList(orderBy: $order, filter: $filter, first: 20, after: $after) {
      edges { node { phone tier points pendingPoints lifetimeSpendFen lastPurchaseAt
        lastPurchaseStore { name } membership { id } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;
const ORDERS = [
  ["NEWEST", "newest"],
  ["POINTS", "most points"],
  ["SPEND", "most spend"],
  ["LAST_PURCHASE", "latest purchase"],
];
const DETAIL = `query($id: ID!) {
  node(id: $id) {
    ... on Membership {
      id phone tier createdAt lastPurchaseAt lifetimeSpendFen
      joinStore { name } lastPurchaseStore { name }
      points { available pending sequence }
      history(first: 20) {
        edges { node { id sequence delta balanceAfter createdAt transaction { kind reason store { name } } } }
      }
    }
  }
}`;
const LIVE = `subscription($m: ID!, $a: BigInt) {
  balanceChanged(membershipId: $m, afterSequence: $a) { sequence balance delta }
}`;

export function Members({ who }) {
  const [phone, setPhone] = useState("");
  const [error, setError] = useState(null);
  const search = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const { memberByPhone } = await gql(SEARCH, { p: phone.trim() });
      if (!memberByPhone) setError({ message: `No member with phone ${phone.trim()} in this brand.` });
      else window.location.hash = `#/members/${encodeURIComponent(memberByPhone.id)}`;
    } catch (e) {
      setError(e);
    }
  };
  return html`<section>
    <h2>Members</h2>
    <form class="card row" onSubmit=${search} role="search">
      <label for="phone">Phone</label>
      <input id="phone" name="phone" type="tel" required placeholder="13800000000"
        value=${phone} onInput=${(e) => setPhone(e.target.value)} />
      <button type="submit">Find</button>
    </form>
    <${Failure} error=${error} />
    ${who.role === "BRAND" ? html`<${HqList} who=${who} />` : html`<${StoreList} who=${who} />`}
  </section>`;
}

const detailLink = (id, text) => html`<a href=${`#/members/${encodeURIComponent(id)}`}>${text}</a>`;

function Pager({ after, setAfter, pageInfo }) {
  return html`<div class="row">
    ${after.length > 1 && html`<button class="link" onClick=${() => setAfter(after.slice(0, -1))}>← Previous</button>`}
    ${pageInfo.hasNextPage && html`<button class="link" onClick=${() => setAfter([...after, pageInfo.endCursor])}>Next →</button>`}
  </div>`;
}

function HqList({ who }) {
  const [order, setOrder] = useState("NEWEST");
  const [tier, setTier] = useState("");
  const [after, setAfter] = useState([null]);
  const [exportError, setExportError] = useState(null);
  const filter = tier.trim() ? { tier: tier.trim() } : null;
  const [data, error] = useQuery(
    () => gql(HQ_LIST, { b: who.brandId, order, filter, after: after[after.length - 1] }),
    [order, tier, after.length],
  );
  const reset = (set) => (e) => {
    set(e.target.value);
    setAfter([null]);
  };
  const exportCsv = () =>
    downloadCsv("member-list", { brandId: who.brandId, orderBy: order, tier: tier.trim() }).catch(setExportError);
  const columns = [
    { label: "Phone", cell: (m) => detailLink(m.membership.id, m.phone) },
    { label: "Tier", cell: (m) => m.tier },
    { label: "Points", num: true, cell: (m) => fmt.int(m.points) },
    { label: "Pending", num: true, cell: (m) => fmt.int(m.pendingPoints) },
    { label: "Spend", num: true, cell: (m) => fmt.yuan(m.lifetimeSpendFen) },
    { label: "Last purchase", cell: (m) => fmt.time(m.lastPurchaseAt) },
    { label: "Store", cell: (m) => m.lastPurchaseStore?.name ?? "—" },
  ];
  const list = data?.reports.memberList;
  return html`
    <div class="row">
      <label for="order">Order</label>
      <select id="order" value=${order} onChange=${reset(setOrder)}>
        ${ORDERS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
      </select>
      <label for="tier">Tier</label>
      <input id="tier" placeholder="any" value=${tier} onChange=${reset(setTier)} />
      <button class="link" onClick=${exportCsv}>Export CSV</button>
    </div>
    <${Failure} error=${exportError} />
    <${Loading} data=${data} error=${error}>${() => html`
      <${Table} columns=${columns} rows=${nodes(list).map((m) => ({ ...m, id: m.membership.id }))}
        empty="No members." testid="members" />
      <${Pager} after=${after} setAfter=${setAfter} pageInfo=${list.pageInfo} />`}<//>`;
}

function StoreList({ who }) {
  const [after, setAfter] = useState([null]);
  const [page, pageError] = useQuery(
    () => gql(LIST, { b: who.brandId, after: after[after.length - 1] }),
    [after.length],
  );
  const columns = [
    { label: "Phone", cell: (m) => detailLink(m.id, m.phone) },
    { label: "Tier", cell: (m) => m.tier },
    { label: "Points", num: true, cell: (m) => fmt.int(m.points.available) },
    { label: "Last purchase", cell: (m) => fmt.time(m.lastPurchaseAt) },
  ];
  return html`<${Loading} data=${page} error=${pageError}>${() => html`
    <${Table} columns=${columns} rows=${nodes(page.memberships)} empty="No members yet." testid="members" />
    <${Pager} after=${after} setAfter=${setAfter} pageInfo=${page.memberships.pageInfo} />`}<//>`;
}

export function MemberDetail({ who, id }) {
  const [data, error, reload] = useQuery(() => gql(DETAIL, { id }), [id]);
  const [live, setLive] = useState(null); // the newest balance event seen
  const [liveError, setLiveError] = useState(null);
  const m = data?.node;
  const sequence = m?.points.sequence;
  useEffect(() => {
    if (sequence == null) return undefined;
    // Resume after the sequence the page was loaded at: no change is missed or shown twice.
    return subscribe(
      LIVE,
      { m: id, a: sequence },
      (d) => {
        setLive(d.balanceChanged);
        setLiveError(null);
        reload();
      },
      setLiveError,
    );
  }, [id, sequence == null]);
  if (error || !data) return html`<${Loading} data=${data} error=${error}>${() => null}<//>`;
  if (!m) return html`<p class="error">No such member.</p>`;
  const available = live && live.sequence > Number(m.points.sequence) ? live.balance : m.points.available;
  const columns = [
    { label: "When", cell: (h) => fmt.time(h.createdAt) },
    { label: "What", cell: (h) => fmt.kind(h.transaction.kind) },
    { label: "Points", num: true, cell: (h) => fmt.signed(h.delta) },
    { label: "Balance", num: true, cell: (h) => fmt.int(h.balanceAfter) },
    { label: "Store", cell: (h) => h.transaction.store?.name ?? "—" },
    { label: "Reason", cell: (h) => h.transaction.reason || "" },
  ];
  return html`<section>
    <p><a href="#/members">← Members</a></p>
    <h2>${m.phone}</h2>
    <div class="tiles">
      <div class="tile"><span>Available points</span><strong data-testid="balance">${fmt.int(available)}</strong></div>
      <div class="tile"><span>Pending</span><strong>${fmt.int(m.points.pending)}</strong></div>
      <div class="tile"><span>Tier</span><strong>${m.tier}</strong></div>
      <div class="tile"><span>Lifetime spend</span><strong>${fmt.yuan(m.lifetimeSpendFen)}</strong></div>
    </div>
    <p class="muted">
      ${`Member since ${fmt.time(m.createdAt)} at ${m.joinStore?.name ?? "HQ"} · last purchase `}
      ${fmt.time(m.lastPurchaseAt) + (m.lastPurchaseStore ? ` at ${m.lastPurchaseStore.name}` : "") + " · "}
      <span data-testid="live-state">${liveError ? "live updates stopped" : "live"}</span>
    </p>
    <${Failure} error=${liveError} />
    ${who.role === "BRAND" && html`<${Adjust} membership=${m} onDone=${reload} />`}
    <h3>History</h3>
    <${Table} columns=${columns} rows=${nodes(m.history)} testid="history" />
  </section>`;
}

function Adjust({ membership, onDone }) {
  const [points, setPoints] = useState("");
  const [reason, setReason] = useState("");
  const [confirm, setConfirm] = useState(null); // { points, reason, key } once asked
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  const ask = (event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    const n = Number(points);
    if (!Number.isInteger(n) || n === 0) return setError({ message: "Points must be a whole number, not 0." });
    if (!reason.trim()) return setError({ message: "Give a reason." });
    // One idempotency key per confirmation: a double click, or a retry after a lost answer, replays.
    setConfirm({ points: n, reason: reason.trim(), key: `console-${crypto.randomUUID()}` });
  };
  const apply = async () => {
    setBusy(true);
    try {
      const input = {
        membershipId: membership.id,
        points: confirm.points,
        reason: confirm.reason,
        idempotencyKey: confirm.key,
      };
      const out = await mutate("adjustPoints", "AdjustPointsInput", input, "points balance");
      setDone(`Done: ${fmt.signed(out.points)} points; the balance is now ${fmt.int(out.balance)}.`);
      setPoints("");
      setReason("");
      setConfirm(null);
      onDone();
    } catch (e) {
      setError(e);
      setConfirm(null);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="card">
    <h3>Adjust points</h3>
    ${confirm
      ? html`<div class="confirm" role="alertdialog" aria-label="Confirm the adjustment">
          <p>${confirm.points > 0 ? "Add" : "Remove"} <strong>${fmt.int(Math.abs(confirm.points))}</strong> points
            ${confirm.points > 0 ? "to" : "from"} ${membership.phone}? Reason: “${confirm.reason}”</p>
          <button onClick=${apply} disabled=${busy}>Confirm</button>
          <button class="link" onClick=${() => setConfirm(null)} disabled=${busy}>Cancel</button>
        </div>`
      : html`<form class="row" onSubmit=${ask}>
          <label for="adjust-points">Points (+/−)</label>
          <input id="adjust-points" name="points" type="number" step="1" required value=${points}
            onInput=${(e) => setPoints(e.target.value)} />
          <label for="adjust-reason">Reason</label>
          <input id="adjust-reason" name="reason" required maxlength="200" value=${reason}
            onInput=${(e) => setReason(e.target.value)} />
          <button type="submit">Adjust…</button>
        </form>`}
    <${Failure} error=${error} />
    ${done && html`<p class="ok" role="status">${done}</p>`}
  </div>`;
}
