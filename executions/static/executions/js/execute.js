/* The Execute dialog: pick a workflow, give optional JSON input (checked here first, so a
   typo is explained before anything is sent), start it asynchronously, open its page. */
"use strict";

(() => {
  const dialog = document.getElementById("execute-dialog");
  const form = document.getElementById("execute-form");
  if (!dialog || !form) return;
  const select = form.querySelector("#execute-workflow");
  const input = form.querySelector("#execute-input");
  const error = form.querySelector("#execute-error");
  const submit = form.querySelector("[data-execute-submit]");

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
  }

  function parseInput() {
    const text = input.value.trim();
    if (!text) return {};
    let value;
    try {
      value = JSON.parse(text);
    } catch (problem) {
      throw new Error(`Input is not valid JSON: ${problem.message}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error('Input must be a JSON object, like {"a": 1}.');
    }
    return value;
  }

  function serverMessage(data, status) {
    if (data && Array.isArray(data.errors) && data.errors.length) {
      return data.errors.map((e) => (typeof e === "string" ? e : e.message || JSON.stringify(e))).join("; ");
    }
    if (data && data.error) return typeof data.error === "string" ? data.error : data.error.message;
    return `The server answered ${status}.`;
  }

  for (const button of document.querySelectorAll("[data-execute-open]")) {
    button.addEventListener("click", () => {
      if (button.dataset.workflow) select.value = button.dataset.workflow;
      showError("");
      dialog.showModal();
      (button.dataset.workflow ? input : select).focus();
    });
  }
  form.querySelector("[data-execute-close]").addEventListener("click", () => dialog.close());
  input.addEventListener("input", () => {
    if (!error.hidden) showError("");
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let payload;
    try {
      payload = parseInput();
    } catch (problem) {
      showError(problem.message);
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const response = await fetch(form.dataset.executeUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value,
        },
        body: JSON.stringify({ workflowId: select.value, input: payload, async: true }),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok || !data || !data.executionId) {
        showError(serverMessage(data, response.status));
        return;
      }
      window.location.assign(form.dataset.detailUrl.replace("__id__", encodeURIComponent(data.executionId)));
    } catch (problem) {
      showError(`Could not reach the server: ${problem.message}`);
    } finally {
      submit.disabled = false;
    }
  });
})();
