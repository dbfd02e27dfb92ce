// A page region kept current without reloading the page (issue 17: no page refreshes
// itself, WCAG 2.2.1). Every data-poll-seconds the page asks the server for itself
// again and swaps in the region's new content when what it says has changed; a short
// message in a status region says so (screen readers announce it; focus stays put).
// A "Check again" link (data-poll-now) asks at once; without JavaScript it reloads.
// When the page answers with another page (the call has opened, say), the region shows
// its <template data-poll-gone> instead and polling stops.
const region = document.querySelector("[data-poll-region]");
const status = document.querySelector("[data-poll-status]");
let timer = null;

function normalised(element) {
  return element.textContent.replace(/\s+/g, " ").trim();
}

function refocus(formAction) {
  if (!formAction) return;
  for (const form of region.querySelectorAll("form")) {
    if (form.action === formAction) {
      form.querySelector("button, [type=submit]")?.focus();
      return;
    }
  }
}

function replace(content, message) {
  const active = document.activeElement;
  const formAction = region.contains(active) ? active.closest("form")?.action : null;
  region.replaceChildren(...content);
  refocus(formAction);
  if (status && message) status.textContent = message;
}

async function check() {
  clearTimeout(timer);
  let response;
  try {
    response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
  } catch {
    schedule();
    return;
  }
  if (!response.ok) {
    schedule();
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector(`[data-poll-region="${region.dataset.pollRegion}"]`);
  if (!fresh) {
    const gone = document.querySelector("template[data-poll-gone]");
    if (gone) {
      replace([gone.content.cloneNode(true)], region.dataset.goneText);
      return; // the page is another page now: nothing more to check here
    }
  } else if (normalised(fresh) !== normalised(region)) {
    replace([...fresh.childNodes], region.dataset.changedText);
  } else if (status && region.dataset.sameText) {
    status.textContent = region.dataset.sameText;
  }
  schedule();
}

function schedule() {
  timer = setTimeout(check, 1000 * Number(region.dataset.pollSeconds || 60));
}

if (region) {
  for (const hidden of document.querySelectorAll("[data-poll-only]")) hidden.hidden = false;
  for (const link of document.querySelectorAll("[data-poll-now]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      if (status) status.textContent = "";
      check();
    });
  }
  schedule();
}
