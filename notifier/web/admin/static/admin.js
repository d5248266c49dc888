// notifier admin dashboard: live figures while an alert goes out. The page is complete without this script; it
// only swaps the server-rendered `#live` block for a fresh one every 2 seconds, until the server marks it done.
// Vendored with the package (nothing is loaded from elsewhere); no innerHTML: the fragment is parsed as a
// separate document and its nodes moved in.
"use strict";
(function () {
  const INTERVAL_MS = 2000;
  const live = document.getElementById("live");
  const status = document.getElementById("live-status");
  if (!live || !live.dataset.liveUrl || live.dataset.done === "true") return;

  function say(text) {
    if (status && status.textContent !== text) status.textContent = text;
  }

  async function refresh() {
    const response = await fetch(live.dataset.liveUrl, {
      credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" }, redirect: "error" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("live");
    if (!fresh) throw new Error("no #live block in the answer");
    // Every block the answer carries replaces the page's block of the same id; open <details> stay open.
    for (const block of doc.querySelectorAll("[data-live-block]")) {
      const here = document.getElementById(block.id);
      if (!here) continue;
      const open = Array.from(here.querySelectorAll("details[open]"), (d) => d.id);
      here.replaceChildren(...Array.from(block.childNodes));
      for (const id of open) {
        const details = document.getElementById(id);
        if (details) details.open = true;
      }
    }
    live.dataset.done = fresh.dataset.done;
    live.dataset.status = fresh.dataset.status || "";
    say(live.dataset.status);
    return fresh.dataset.done !== "true";
  }

  async function tick() {
    let again = true;
    if (!document.hidden) {
      try {
        again = await refresh();
      } catch (err) {
        say(live.dataset.staleText || "");
        live.dataset.done = "stale";
        return;
      }
    }
    if (again) window.setTimeout(tick, INTERVAL_MS);
  }

  window.setTimeout(tick, INTERVAL_MS);
})();
