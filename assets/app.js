// Copy buttons: the one piece of script the dashboard has (served from 'self', no inline code).
document.querySelectorAll("button.copy").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  });
});
