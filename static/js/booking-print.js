// The "Print day sheet" button: CSP forbids inline handlers.
for (const button of document.querySelectorAll("[data-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
