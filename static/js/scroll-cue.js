// "Scroll sideways for more" cues (data-scroll-cue="<id of the scrolling region>"): shown
// while the region is wider than the screen, hidden when everything fits. Without
// JavaScript the cue stays visible, which is true often enough to be worth the words.
for (const cue of document.querySelectorAll("[data-scroll-cue]")) {
  const region = document.getElementById(cue.dataset.scrollCue);
  if (!region) continue;
  const update = () => {
    cue.hidden = region.scrollWidth <= region.clientWidth + 1;
  };
  new ResizeObserver(update).observe(region);
  update();
}
