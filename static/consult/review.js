/*
 * Clinician workspace enhancements. Everything works without this file (plain forms); it adds:
 * - select words in a patient message to fill that message's "add a missed mention" form;
 * - print and copy buttons.
 * Text is only ever written with textContent / input values, never parsed as HTML.
 */
(function () {
  "use strict";

  function offsetsIn(container, range) {
    // Offsets count characters of the rendered text, which is exactly the message text (the page
    // renders highlights as nested elements without adding or removing characters).
    var before = document.createRange();
    before.selectNodeContents(container);
    before.setEnd(range.startContainer, range.startOffset);
    var start = before.toString().length;
    var selected = range.toString();
    var end = start + selected.length;
    var lead = selected.length - selected.replace(/^\s+/, "").length;
    var trail = selected.length - selected.replace(/\s+$/, "").length;
    return { start: start + lead, end: end - trail, text: selected.trim() };
  }

  function onSelection(container) {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    var range = selection.getRangeAt(0);
    if (!container.contains(range.startContainer) || !container.contains(range.endContainer)) return;
    var found = offsetsIn(container, range);
    if (!found.text) return;
    var form = document.querySelector('.add-mention__form[data-message-id="' + container.getAttribute("data-message-id") + '"]');
    if (!form) return;
    form.elements.start.value = String(found.start);
    form.elements.end.value = String(found.end);
    var output = form.querySelector(".add-mention__selected");
    if (output) output.textContent = "“" + found.text + "” (" + found.start + "–" + found.end + ")";
    var details = form.closest("details");
    if (details) details.open = true;
  }

  Array.prototype.forEach.call(document.querySelectorAll(".turn--patient .turn__text[data-message-id]"), function (container) {
    container.addEventListener("mouseup", function () { onSelection(container); });
    container.addEventListener("keyup", function () { onSelection(container); });
  });

  var printButton = document.querySelector("[data-print]");
  if (printButton) {
    printButton.hidden = false;
    printButton.addEventListener("click", function () { window.print(); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
      });
    });
  });
})();
