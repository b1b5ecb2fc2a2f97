/* The rich-text editor of the campaign form: a contenteditable area with a few buttons,
   kept in sync with the body textarea (which is what the form submits, and what is
   shown when scripts do not run). The server sanitises the HTML again on save. */
(function () {
  "use strict";

  var ALLOWED = {
    A: ["href", "title"], ABBR: [], B: [], BLOCKQUOTE: [], BR: [], CODE: [], DEL: [], DIV: [],
    EM: [], H1: [], H2: [], H3: [], H4: [], HR: [], I: [], IMG: ["src", "alt", "width", "height", "title"],
    LI: [], OL: [], P: [], PRE: [], S: [], SMALL: [], SPAN: [], STRONG: [], SUB: [], SUP: [],
    TABLE: [], TBODY: [], TD: ["colspan", "rowspan"], TFOOT: [], TH: ["colspan", "rowspan", "scope"],
    THEAD: [], TR: [], U: [], UL: []
  };
  // Elements dropped with everything inside them; other unknown ones keep their text.
  var DROP = { SCRIPT: 1, STYLE: 1, TEMPLATE: 1, IFRAME: 1, OBJECT: 1, EMBED: 1, NOSCRIPT: 1, SVG: 1, MATH: 1, TITLE: 1, HEAD: 1 };
  var SAFE_URL = /^\s*(https?:|mailto:|tel:|\{\{|#)/i;
  var FIRST_NAME = '{{ contact.first_name | default("there") }}';

  function copyClean(from, to) {
    Array.prototype.forEach.call(from.childNodes, function (node) {
      if (node.nodeType === 3) { to.appendChild(document.createTextNode(node.data)); return; }
      if (node.nodeType !== 1) { return; }
      var name = node.tagName.toUpperCase();
      if (DROP[name]) { return; }
      if (!Object.prototype.hasOwnProperty.call(ALLOWED, name)) { copyClean(node, to); return; }
      var el = document.createElement(name.toLowerCase());
      ALLOWED[name].forEach(function (attr) {
        var value = node.getAttribute(attr);
        if (value === null) { return; }
        if ((attr === "href" || attr === "src") && !SAFE_URL.test(value)) { return; }
        el.setAttribute(attr, value);
      });
      copyClean(node, el);
      to.appendChild(el);
    });
  }

  // Parsed in an inert <template>: nothing in the text loads or runs while it is cleaned.
  function cleanFragment(html) {
    var inert = document.createElement("template");
    inert.innerHTML = html;
    var out = document.createDocumentFragment();
    copyClean(inert.content, out);
    return out;
  }

  function setup(box) {
    var textarea = box.querySelector("textarea");
    var format = document.getElementById("id_content_format");
    var label = box.querySelector("label");
    if (!textarea || !format || !label) { return; }
    label.id = label.id || "body-label";

    var toolbar = document.createElement("div");
    toolbar.className = "rt-toolbar";
    toolbar.setAttribute("role", "toolbar");
    toolbar.setAttribute("aria-label", "Formatting");
    var editor = document.createElement("div");
    editor.className = "rt-editor";
    editor.contentEditable = "true";
    editor.setAttribute("role", "textbox");
    editor.setAttribute("aria-multiline", "true");
    editor.setAttribute("aria-labelledby", label.id);
    editor.setAttribute("data-testid", "richtext");

    var commands = [
      ["Bold", function () { document.execCommand("bold"); }],
      ["Italic", function () { document.execCommand("italic"); }],
      ["Heading", function () { document.execCommand("formatBlock", false, "h2"); }],
      ["Paragraph", function () { document.execCommand("formatBlock", false, "p"); }],
      ["Bullet list", function () { document.execCommand("insertUnorderedList"); }],
      ["Numbered list", function () { document.execCommand("insertOrderedList"); }],
      ["Link", function () {
        var url = window.prompt("Address of the link (https://…)", "https://");
        if (url && SAFE_URL.test(url)) { document.execCommand("createLink", false, url.trim()); }
      }],
      ["Clear formatting", function () { document.execCommand("removeFormat"); }],
      ["Insert first name", function () { document.execCommand("insertText", false, FIRST_NAME); }]
    ];
    commands.forEach(function (command) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = command[0];
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () { editor.focus(); command[1](); sync(); });
      toolbar.appendChild(button);
    });
    box.insertBefore(toolbar, textarea);
    box.insertBefore(editor, textarea);

    // Enter makes a new paragraph (<p>), not a <div>.
    document.execCommand("defaultParagraphSeparator", false, "p");

    function sync() { if (format.value === "richtext") { textarea.value = editor.innerHTML; } }
    function show() {
      var rich = format.value === "richtext";
      if (rich) {
        editor.replaceChildren(cleanFragment(textarea.value));
        label.htmlFor = "";
      } else {
        label.htmlFor = textarea.id;
      }
      toolbar.hidden = editor.hidden = !rich;
      textarea.hidden = rich;
    }
    var previous = format.value;
    format.addEventListener("change", function () {
      if (previous === "richtext") { textarea.value = editor.innerHTML; }
      previous = format.value;
      show();
    });
    editor.addEventListener("input", sync);
    textarea.form.addEventListener("submit", sync);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-editor]"), setup);
  });
})();
