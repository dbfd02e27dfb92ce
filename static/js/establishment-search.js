// The home page's prison search as you type. Without JavaScript the form asks the
// server (?q=), which marks the same matches: this only saves the round trip.
// search() folds text like establishments.selectors.search_key (case, accents, punctuation).

const form = document.querySelector("[data-establishment-search]");

function searchKey(text) {
  return text
    .toLocaleLowerCase()
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

if (form) {
  const input = form.querySelector("input[name=q]");
  const status = document.getElementById("search-status");
  const none = document.querySelector("[data-search-none]");
  const reset = document.querySelector("[data-search-reset]");
  const groups = Array.from(document.querySelectorAll("[data-search-group]"));
  let timer = null;

  const filter = () => {
    const words = searchKey(input.value).split(" ").filter(Boolean);
    let found = 0;
    for (const group of groups) {
      let inGroup = 0;
      for (const item of group.querySelectorAll("[data-search-text]")) {
        const text = item.dataset.searchText;
        const matches = words.every((word) => text.includes(word));
        item.hidden = !matches;
        inGroup += matches ? 1 : 0;
      }
      group.hidden = inGroup === 0;
      found += inGroup;
    }
    if (none) none.hidden = found > 0 || words.length === 0;
    if (reset) reset.hidden = words.length === 0;
    if (status) {
      status.textContent = words.length
        ? interpolate(
            ngettext("%(count)s prison found.", "%(count)s prisons found.", found),
            { count: found },
            true,
          )
        : "";
    }
  };

  input.addEventListener("input", () => {
    // A short pause so a screen reader hears the count once, not at every letter.
    clearTimeout(timer);
    timer = setTimeout(filter, 250);
  });
}
