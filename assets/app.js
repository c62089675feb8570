// The dashboard's only script, served from 'self' (the CSP allows no inline code). Every page
// works without it; it adds a copy button, "Select all reads" and the mint form's live warning.

// A copy button after the token and after each client configuration (made here, so that a
// page without script shows no button that does nothing).
document.querySelectorAll("[data-copyable]").forEach((field) => {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", `Copy ${field.dataset.copyable}`);
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(field.value ?? field.textContent);
    button.textContent = "Copied";
  });
  field.after(button);
});

// The mint form: a warning that grows with the number of write abilities checked.
const risk = document.getElementById("risk");
if (risk) {
  const boxes = Array.from(document.querySelectorAll('input[name="ability"]:not([disabled])'));
  const describe = () => {
    const checked = boxes.filter((b) => b.checked);
    const writes = checked.filter((b) => b.dataset.writes === "true").length;
    risk.hidden = checked.length === 0;
    risk.className = "risk " + (writes === 0 ? "risk-read" : writes < 3 ? "risk-write" : "risk-many");
    const abilities = (n) => (n === 1 ? "1 ability" : `${n} abilities`);
    if (writes === 0) {
      risk.textContent = `Read-only: ${abilities(checked.length)}. A leak of this token exposes data but changes nothing.`;
    } else if (writes < 3) {
      risk.textContent = `This token can change data (${writes} write ${writes === 1 ? "ability" : "abilities"}). Whoever holds it can act as you within them: give it an expiry and keep it out of shared transcripts.`;
    } else {
      risk.textContent = `Warning: ${writes} write abilities. A leak of this token lets anyone change much of this team's data. Prefer several narrow tokens, limit it to a project, and give it a short expiry.`;
    }
  };
  boxes.forEach((b) => b.addEventListener("change", describe));

  const reads = boxes.filter((b) => b.dataset.writes === "false");
  const selectReads = document.createElement("button");
  selectReads.type = "button";
  selectReads.className = "secondary";
  selectReads.textContent = "Select all reads";
  selectReads.addEventListener("click", () => {
    reads.forEach((b) => { b.checked = true; });
    describe();
  });
  risk.parentNode.insertBefore(selectReads, risk);
  describe();
}
