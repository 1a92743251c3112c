/* Executions list: rows and stats follow the executions stream. Events only name what
   changed; the server re-renders the same partials the page was built from. */
"use strict";

(() => {
  const config = document.getElementById("list-config");
  const rows = document.getElementById("execution-rows");
  const stats = document.getElementById("stats");
  const pager = document.getElementById("pager");
  if (!config || !rows) return;

  const firstPage = config.dataset.firstPage === "true";
  const pageSize = Number(config.dataset.pageSize) || 50;
  const changed = new Set();
  let resync = false;

  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  /* The filter form leaves its empty fields out, so a shared URL names only the filters set. */
  for (const form of document.querySelectorAll("form[data-filter-form]")) {
    form.addEventListener("formdata", (event) => {
      for (const [name, value] of [...event.formData.entries()]) {
        if (value === "") event.formData.delete(name);
      }
    });
  }

  function rowFor(id) {
    return rows.querySelector(`tr[data-execution-id="${CSS.escape(id)}"]`);
  }

  function swapStats(html) {
    const before = new Map(
      [...stats.querySelectorAll("[data-stat]")].map((el) => [el.dataset.stat, el.textContent]),
    );
    stats.replaceChildren(c4c.fragment(html));
    for (const el of stats.querySelectorAll("[data-stat]")) {
      if (before.get(el.dataset.stat) !== el.textContent) el.classList.add("bumped");
    }
  }

  /* Newest first: a new row goes above the first row that started before it. */
  function insertRow(row) {
    rows.querySelector("tr.empty-row")?.remove();
    const started = row.dataset.started;
    const after = [...rows.querySelectorAll("tr[data-execution-id]")].find(
      (tr) => tr.dataset.started < started,
    );
    rows.insertBefore(row, after || null);
    row.classList.add("fresh");
    const all = rows.querySelectorAll("tr[data-execution-id]");
    if (all.length > pageSize) {
      all[all.length - 1].remove();
      resync = true;
    }
  }

  function applyRow(update) {
    const existing = rowFor(update.id);
    if (!update.matches) {
      existing?.remove();
      return;
    }
    const row = c4c.fragment(update.html).firstElementChild;
    if (existing) {
      existing.replaceWith(row);
    } else if (firstPage) {
      insertRow(row);
    }
  }

  /* A row re-rendered under the keyboard keeps the focus: the same control of its new row (by
     label or link) takes it. bulk.js gives a new row its checkbox in a mutation observer, whose
     microtask was queued by the replacement itself, so it runs before this one. */
  function keepFocus() {
    const active = document.activeElement;
    const tr = active && rows.contains(active) ? active.closest("tr[data-execution-id]") : null;
    if (!tr) return () => {};
    const id = tr.dataset.executionId;
    const label = active.getAttribute("aria-label");
    const href = active.getAttribute("href");
    return () =>
      queueMicrotask(() => {
        if (active.isConnected) return;
        const match = [...(rowFor(id)?.querySelectorAll("a[href], button, input") || [])].find(
          (el) =>
            (label && el.getAttribute("aria-label") === label) ||
            (href && el.getAttribute("href") === href),
        );
        match?.focus();
      });
  }

  const refresh = c4c.coalesce(async () => {
    if (changed.size > pageSize) resync = true;
    const url = new URL(config.dataset.live, window.location.href);
    const wholePage = resync && firstPage;
    const ids = wholePage
      ? []
      : resync
        ? [...rows.querySelectorAll("tr[data-execution-id]")].map((tr) => tr.dataset.executionId)
        : [...changed];
    resync = false;
    changed.clear();
    if (ids.length) url.searchParams.set("ids", ids.join(","));
    else if (!wholePage) return;
    const data = await c4c.fetchJSON(url);
    swapStats(data.stats);
    const restoreFocus = keepFocus();
    if (data.body !== undefined) {
      rows.replaceChildren(c4c.fragment(data.body));
      pager.replaceChildren(c4c.fragment(data.pager));
    } else {
      data.rows.forEach(applyRow);
    }
    restoreFocus();
    paintProgress();
    c4c.refreshTimes(rows);
  }, 150);

  function sync() {
    resync = true;
    refresh();
  }

  /* Node progress of running rows ("3 of 10 done, 2 running"): node statuses per running
     execution, from the node details of executions.initial and executions.update and from the
     node events, painted into the rows' [data-progress] cells (re-rendered rows included). */
  const progress = new Map();

  function noteNodes(execution) {
    if (execution.status !== "running") {
      progress.delete(execution.executionId);
      return;
    }
    const statuses = progress.get(execution.executionId) || new Map();
    for (const [id, detail] of Object.entries(execution.nodeDetails || {})) statuses.set(id, detail.status);
    progress.set(execution.executionId, statuses);
  }

  function noteNode(data, status) {
    const statuses = progress.get(data.executionId) || new Map();
    statuses.set(data.nodeId, status);
    progress.set(data.executionId, statuses);
    paintProgress();
  }

  function paintProgress() {
    for (const cell of rows.querySelectorAll("td[data-progress]")) {
      const statuses = progress.get(cell.closest("tr").dataset.executionId);
      if (!statuses) continue;
      const values = [...statuses.values()];
      const done = values.filter((s) => s === "completed" || s === "failed").length;
      const active = values.filter((s) => s === "running").length;
      const total = Number(cell.dataset.nodeCount) || 0;
      const count = document.createElement("span");
      count.className = "muted";
      count.textContent = `/${total}`;
      const parts = [String(done), count];
      if (active) {
        const running = document.createElement("span");
        running.className = "running-count";
        running.textContent = `${active} running`;
        parts.push(running);
      }
      cell.replaceChildren(...parts);
      cell.title = c4c.progressText(done, total, active);
    }
  }

  /* Our rows are re-rendered from the server, so the stream need only name what changed:
     ?view=delta (c4c's default view sends the whole newest page with every update). */
  const streamUrl = new URL(config.dataset.stream, window.location.href);
  streamUrl.searchParams.set("view", "delta");

  c4c.stream(
    streamUrl.href,
    {
      "executions.initial": (data) => {
        progress.clear();
        (data.executions || []).forEach(noteNodes);
        sync();
      },
      "executions.update": (data) => {
        for (const execution of data.executions || []) changed.add(execution.executionId);
        (data.executions || []).forEach(noteNodes);
        refresh();
      },
      "node.started": (data) => noteNode(data, "running"),
      "node.completed": (data) => noteNode(data, data.status || "completed"),
    },
    sync,
  );
})();
