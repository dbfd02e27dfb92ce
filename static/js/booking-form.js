// Stop a second click sending the form twice (the idempotency key makes a second
// submission harmless anyway), and bring the error summary into view for screen readers.
const summary = document.getElementById("error-summary");
if (summary) summary.focus();
for (const form of document.querySelectorAll("form")) {
  form.addEventListener("submit", (event) => {
    const button = form.querySelector("[data-once]");
    if (!button) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    button.setAttribute("aria-disabled", "true");
  });
}
