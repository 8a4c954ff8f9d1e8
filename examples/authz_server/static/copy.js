// Adds a "Copy" button to every <pre data-copy> block. The pages work without it.
document.addEventListener("DOMContentLoaded", () => {
  for (const block of document.querySelectorAll("pre[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (block.dataset.copy || "to clipboard"));
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(block.innerText);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    const wrap = document.createElement("div");
    wrap.className = "copy-wrap";
    block.replaceWith(wrap);
    wrap.append(block, button);
  }
});
