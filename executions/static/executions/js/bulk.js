/* Selecting runs on the list and acting on many at once: a checkbox per row (added here, and
   again whenever the live list re-renders a row), Compare for exactly two, and cancel or re-run
   of the selected runs or of every run matching the page's filter. The dialog counts first
   (GET .../bulk/count), states the count and the exact filter, sends the count's token with the
   action (a 409 means the runs changed: it counts again), then polls the action's progress. */
"use strict";

(() => {
  const bar = document.getElementById("bulk-bar");
  const rows = document.getElementById("execution-rows");
  const dialog = document.getElementById("bulk-dialog");
  if (!bar || !rows || !dialog) return;

  const form = dialog.querySelector("#bulk-form");
  const title = dialog.querySelector("#bulk-title");
  const summary = dialog.querySelector("#bulk-summary");
  const words = dialog.querySelector("#bulk-filter-words");
  const error = dialog.querySelector("#bulk-error");
  const progress = dialog.querySelector("#bulk-progress");
  const progressBar = dialog.querySelector("#bulk-progress-bar");
  const progressText = dialog.querySelector("#bulk-progress-text");
  const confirm = dialog.querySelector("[data-bulk-confirm]");
  const recount = dialog.querySelector("[data-bulk-recount]");
  const selectedText = bar.querySelector("#bulk-selected");
  const compare = bar.querySelector("[data-compare]");
  const headerRow = rows.closest("table").querySelector("thead tr");
  const selected = new Set();
  const VERB = { cancel: "Cancel", rerun: "Re-run" };
  const DONE = { cancel: "cancelled", rerun: "re-run" };
  let pending = null; // {action, scope, ids, counted}
  let polling = null;

  /* ---- selection ---- */

  function rowIds() {
    return [...rows.querySelectorAll("tr[data-execution-id]")].map((tr) => tr.dataset.executionId);
  }

  function checkbox(label) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.setAttribute("aria-label", label);
    return box;
  }

  const all = checkbox("Select every run on this page");
  all.dataset.selectAll = "";
  const allCell = document.createElement("th");
  allCell.scope = "col";
  allCell.className = "col-select";
  allCell.append(all);
  headerRow.prepend(allCell);
  rows.closest("table").classList.add("selectable");

  function decorate() {
    for (const tr of rows.querySelectorAll("tr[data-execution-id]")) {
      if (tr.querySelector("td.col-select")) continue;
      const id = tr.dataset.executionId;
      const box = checkbox(`Select run ${id}`);
      box.value = id;
      box.checked = selected.has(id);
      const cell = document.createElement("td");
      cell.className = "col-select";
      cell.append(box);
      tr.prepend(cell);
      tr.classList.toggle("selected", box.checked);
    }
    for (const cell of rows.querySelectorAll("tr.empty-row td[colspan]:not([data-widened])")) {
      cell.colSpan += 1;
      cell.dataset.widened = "";
    }
    const present = new Set(rowIds());
    for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
    update();
  }

  function update() {
    const count = selected.size;
    selectedText.textContent = count ? `${count} selected` : "No runs selected";
    for (const button of bar.querySelectorAll("[data-bulk-scope=selected]")) {
      button.disabled = count === 0;
    }
    compare.disabled = count !== 2;
    const ids = rowIds();
    all.checked = ids.length > 0 && ids.every((id) => selected.has(id));
    all.indeterminate = count > 0 && !all.checked;
  }

  rows.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    if (box.checked) selected.add(box.value);
    else selected.delete(box.value);
    box.closest("tr").classList.toggle("selected", box.checked);
    update();
  });

  all.addEventListener("change", () => {
    for (const box of rows.querySelectorAll("td.col-select input")) {
      box.checked = all.checked;
      if (all.checked) selected.add(box.value);
      else selected.delete(box.value);
      box.closest("tr").classList.toggle("selected", box.checked);
    }
    update();
  });

  /* The live list replaces rows as runs change: give each new row its checkbox. */
  new MutationObserver(decorate).observe(rows, { childList: true });

  compare.addEventListener("click", () => {
    // The list is newest first: the older run is A, the newer B.
    const [newer, older] = rowIds().filter((id) => selected.has(id));
    const url = new URL(bar.dataset.compareUrl, window.location.href);
    url.searchParams.set("a", older);
    url.searchParams.set("b", newer);
    window.location.assign(url);
  });

  /* ---- the dialog ---- */

  function showError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function message(data, status) {
    if (data && typeof data.error === "string") return data.error;
    return `The server answered ${status}.`;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => null);
    return { response, data };
  }

  function countUrl(action, scope, ids) {
    const url = new URL(bar.dataset.countUrl, window.location.href);
    url.search = scope === "filter" ? bar.dataset.filterQuery : "";
    url.searchParams.set("action", action);
    for (const id of scope === "filter" ? [] : ids) url.searchParams.append("executionId", id);
    return url;
  }

  function describeCount(action, counted) {
    if (counted.count === 0) return "No runs match: there is nothing to do.";
    const runs = counted.count === 1 ? "1 run" : `${counted.count} runs`;
    if (action === "cancel") {
      const skip = counted.finished ? ` ${counted.finished} already ended and will be skipped.` : "";
      return `Cancel ${runs}? ${counted.running} still going will be cancelled.${skip}`;
    }
    const skip = counted.running ? ` ${counted.running} still going will be skipped.` : "";
    return `Re-run ${runs}? ${counted.finished} finished will run again as new executions.${skip}`;
  }

  /* Count the runs and state them; `notice` (why it counts again) stays shown. */
  async function count(notice = "") {
    const { action, scope, ids } = pending;
    summary.textContent = "Counting…";
    confirm.disabled = true;
    recount.hidden = true;
    showError(notice);
    try {
      const { response, data } = await getJSON(countUrl(action, scope, ids));
      if (!response.ok || !data) {
        summary.textContent = "";
        showError(message(data, response.status));
        return;
      }
      pending.counted = data;
      words.textContent = data.filter;
      summary.textContent = describeCount(action, data);
      const useful = action === "cancel" ? data.running : data.finished;
      confirm.disabled = useful === 0;
      confirm.textContent = `${VERB[action]} ${data.count === 1 ? "1 run" : `${data.count} runs`}`;
      if (!confirm.disabled) confirm.focus();
    } catch (problem) {
      showError(`Could not reach the server: ${problem.message}`);
    }
  }

  function open(action, scope) {
    const ids = rowIds().filter((id) => selected.has(id));
    pending = { action, scope, ids, counted: null };
    title.textContent = `${VERB[action]} ${scope === "filter" ? "every run matching the filter" : "the selected runs"}`;
    words.textContent = scope === "filter" ? bar.dataset.filterWords : `${ids.length} selected`;
    progress.hidden = true;
    confirm.hidden = false;
    confirm.textContent = "Confirm";
    dialog.showModal();
    count();
  }

  for (const button of bar.querySelectorAll("[data-bulk-action]")) {
    button.addEventListener("click", () => open(button.dataset.bulkAction, button.dataset.bulkScope));
  }
  dialog.querySelector("[data-bulk-close]").addEventListener("click", () => dialog.close());
  recount.addEventListener("click", () => count());
  dialog.addEventListener("close", () => {
    clearTimeout(polling);
    polling = null;
  });

  function showProgress(state) {
    progress.hidden = false;
    progressBar.max = Math.max(state.count, 1);
    progressBar.value = state.done;
    const verb = DONE[state.action];
    const parts = [`${state.succeeded} ${verb}`];
    if (state.skipped) parts.push(`${state.skipped} skipped`);
    if (state.failed) parts.push(`${state.failed} failed`);
    const head = state.status === "running" ? `${state.done} of ${state.count} done` : "Done";
    progressText.textContent = `${head}: ${parts.join(", ")}.`;
    if (state.status === "failed" || state.errors.length) showError(state.errors.join("; "));
  }

  async function poll(location) {
    try {
      const { response, data } = await getJSON(location);
      if (response.ok && data) {
        showProgress(data);
        if (data.status !== "running") {
          selected.clear();
          for (const box of rows.querySelectorAll("td.col-select input")) box.checked = false;
          for (const tr of rows.querySelectorAll("tr.selected")) tr.classList.remove("selected");
          update();
          return;
        }
      }
    } catch (problem) {
      showError(`Progress could not be read: ${problem.message}`);
    }
    if (dialog.open) polling = setTimeout(() => poll(location), 300);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!pending || !pending.counted) return;
    const { action, scope, ids, counted } = pending;
    const body = { action, expect: counted.expect };
    if (scope === "filter") body.filter = JSON.parse(bar.dataset.filter);
    else body.executionIds = ids;
    confirm.disabled = true;
    showError("");
    try {
      const response = await fetch(bar.dataset.bulkUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value,
        },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => null);
      if (response.status === 409) {
        await count(message(data, response.status));
        return;
      }
      if (!response.ok || !data) {
        showError(message(data, response.status));
        recount.hidden = false;
        return;
      }
      confirm.hidden = true;
      summary.textContent = `${VERB[action]}: ${data.count === 1 ? "1 run" : `${data.count} runs`}, in the background.`;
      showProgress({ action, status: data.status, count: data.count, done: 0, succeeded: 0, skipped: 0, failed: 0, errors: [] });
      poll(data.location);
    } catch (problem) {
      showError(`Could not reach the server: ${problem.message}`);
      confirm.disabled = false;
    }
  });

  bar.hidden = false;
  decorate();
})();
