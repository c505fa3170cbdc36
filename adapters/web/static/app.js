// The replay button: POST /api/decisions/{id}/replay and say what came back.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("replay");
  if (!button) return;
  const out = document.getElementById("replay-result");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.className = "";
    out.textContent = "replaying…";
    try {
      const response = await fetch(`/api/decisions/${encodeURIComponent(button.dataset.decision)}/replay`, {
        method: "POST", credentials: "same-origin",
      });
      const result = await response.json();
      if (!response.ok) throw new Error(result.detail || response.statusText);
      out.className = result.identical ? "identical" : "different";
      out.textContent = result.identical ? "identical" : "DIFFERENT";
      const list = document.getElementById("replay-differences");
      list.replaceChildren(...[...result.differences, ...result.notes].map((line) => {
        const item = document.createElement("li");
        item.textContent = line;
        return item;
      }));
    } catch (error) {
      out.className = "different";
      out.textContent = `replay failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
});
