// The brand's live activity: every earn, redemption, grant and adjustment as it commits (brandActivity).
import { html, useEffect, useState } from "../vendor/htm-preact.mjs";
import { fmt, subscribe } from "../api.js";
import { Failure, Table } from "../ui.js";

const FEED = `subscription($b: ID!) {
  brandActivity(brandId: $b) {
    membershipId asset pending delta balance
    transaction { transactionId kind storeId createdAt }
  }
}`;
const KEEP = 200; // events shown; older ones drop off the page (the ledger keeps them)

export function Activity({ who }) {
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(null);
  useEffect(
    () =>
      subscribe(
        FEED,
        { b: who.brandId },
        (d) => {
          setError(null);
          setEvents((list) => [{ ...d.brandActivity, seen: Date.now() }, ...list].slice(0, KEEP));
        },
        setError,
      ),
    [who.brandId],
  );
  const columns = [
    { label: "When", cell: (e) => fmt.time(e.transaction.createdAt) },
    { label: "What", cell: (e) => fmt.kind(e.transaction.kind) + (e.pending ? " (pending)" : "") },
    { label: "Change", num: true, cell: (e) => `${fmt.signed(e.delta)} ${e.asset.replace("_", " ")}` },
    { label: "Balance", num: true, cell: (e) => fmt.int(e.balance) },
    {
      label: "Member",
      cell: (e) => html`<a href=${`#/members/${encodeURIComponent(e.membershipId)}`}>open</a>`,
    },
  ];
  return html`<section>
    <h2>Live activity</h2>
    <p class="muted">Every change to a member's balance in this brand, as it commits. Newest first; this
      page shows what happened while it was open.</p>
    <${Failure} error=${error} />
    <${Table} columns=${columns} rows=${events.map((e, i) => ({ ...e, id: `${e.transaction.transactionId}-${e.membershipId}-${e.seen}-${i}` }))}
      empty="Waiting for the next purchase, redemption or grant…" testid="activity" />
  </section>`;
}
