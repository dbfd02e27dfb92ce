// The error summary (templates/_partials/error_summary.html): it takes the focus when
// the page opens, so a screen reader reads it first; following one of its links moves
// the focus to that field (a fragment link alone only scrolls) with its label in view.
const summary = document.querySelector("[data-error-summary]");
if (summary && !summary.dataset.ready) {
  summary.dataset.ready = "1";
  summary.focus();
  summary.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    if (!link) return;
    const field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    const legend = field.closest("fieldset")?.querySelector("legend");
    const label = field.id ? document.querySelector(`label[for="${CSS.escape(field.id)}"]`) : null;
    (legend || label || field).scrollIntoView();
    field.focus({ preventScroll: true });
  });
}
