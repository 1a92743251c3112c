/* Light or dark: the page follows the system's colour scheme (prefers-color-scheme) unless the
   person picks one with the top bar's theme button, which cycles Auto -> Light -> Dark. The pick
   is kept in localStorage and set as <html data-theme="..."> (app.css reads it); this file is
   loaded in <head> without defer so a picked theme is on before the first paint. Without
   script the button stays hidden and the system's scheme applies. */
(() => {
  const KEY = "c4c-theme";
  const CHOICES = ["auto", "light", "dark"];
  const root = document.documentElement;

  function stored() {
    try {
      return localStorage.getItem(KEY);
    } catch {
      return null; // storage refused (privacy settings): follow the system
    }
  }

  function apply(choice) {
    if (choice === "light" || choice === "dark") root.dataset.theme = choice;
    else delete root.dataset.theme;
  }

  function remember(choice) {
    try {
      if (choice === "auto") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // Not kept across pages, still applied to this one.
    }
  }

  apply(stored());

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    const label = button?.querySelector("[data-theme-label]");
    if (!button || !label) return;
    const show = () => {
      const choice = root.dataset.theme || "auto";
      label.textContent = choice[0].toUpperCase() + choice.slice(1);
    };
    button.addEventListener("click", () => {
      const current = CHOICES.indexOf(root.dataset.theme || "auto");
      const next = CHOICES[(current + 1) % CHOICES.length];
      apply(next);
      remember(next);
      show();
    });
    // Another tab changed the theme: follow it.
    window.addEventListener("storage", (event) => {
      if (event.key === KEY) {
        apply(event.newValue);
        show();
      }
    });
    show();
    button.hidden = false;
  });
})();
